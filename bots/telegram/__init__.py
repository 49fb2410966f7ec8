"""StickerBot on Telegram, through the same queue and responder as the web chat.

    application = build_telegram_application(settings, submitter, transcripts,
                                             media_store, library)
    await run_telegram(application, settings)      # polling, or webhook mode

Modules: app (building the Application), handlers (which messages are ours, answering,
the resend loop), inbound (message -> UserTurn, media downloads), delivery (sending,
retries, the sticker file_id cache), commands, runner (polling / webhook, 409 reporting).
Shared with Discord: bots.ledger (the database side), bots.redact (the token never
reaches a log), bots.typing_indicator, bots.ratelimit and bots.render.
"""

from bots.ledger import DeliveryPolicy
from bots.telegram.app import adapter_of, build_telegram_application
from bots.telegram.runner import run_telegram, start_telegram, stop_telegram

__all__ = ["DeliveryPolicy", "adapter_of", "build_telegram_application", "run_telegram",
           "start_telegram", "stop_telegram"]
