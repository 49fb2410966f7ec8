"""StickerBot on Discord, through the same queue and responder as the web chat.

    client = build_discord_client(settings, submitter, transcripts, media_store, library)
    await start_discord(client, settings)
    await stop_discord(client)

Modules: app (the Client, its CommandTree, start/stop), handlers (which messages are
ours, answering), inbound (message -> UserTurn, attachments and stickers), delivery
(2000-character chunks, the sticker as a PNG attachment, resends), commands (slash
commands and the /forget buttons), channels (channels enabled with /channel enable).
Shared with Telegram: bots.ledger, bots.resend, bots.ratelimit, bots.typing_indicator,
bots.render, bots.redact and bots.texts.
"""

from bots.discord.app import (
    StickerBotClient,
    build_discord_client,
    start_discord,
    stop_discord,
)
from bots.ledger import DeliveryPolicy

__all__ = ["DeliveryPolicy", "StickerBotClient", "build_discord_client", "start_discord",
           "stop_discord"]
