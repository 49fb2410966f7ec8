"""Building the python-telegram-bot Application: requests, rate limits and handlers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bots.ledger import DeliveryPolicy
from bots.redact import quiet_http_logs, redact_in_logs
from bots.settings import BotSettings
from bots.telegram.commands import COMMANDS, Commands
from bots.telegram.handlers import TelegramAdapter
from engine.stickers import StickerLibrary
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from tasks.submit import Submitter

log = logging.getLogger(__name__)

ADAPTER_KEY = "stickerbot_adapter"


class SendRateLimiter(AIORateLimiter):
    """Telegram's flood limits for sends, but not for the typing indicator.

    Chat actions refreshed every few seconds would otherwise use up a group's
    20-messages-a-minute budget and delay the real answers.
    """

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if endpoint == "sendChatAction":
            return await callback(*args, **kwargs)
        return await super().process_request(callback, args, kwargs, endpoint, data,
                                             rate_limit_args)


def adapter_of(application: Application[Any, Any, Any, Any, Any, Any]) -> TelegramAdapter:
    return application.bot_data[ADAPTER_KEY]  # type: ignore[no-any-return]


def build_telegram_application(
    settings: BotSettings, submitter: Submitter, transcripts: TranscriptStore,
    media_store: MediaStore, library: StickerLibrary, *, policy: DeliveryPolicy | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The bot, wired to the shared queue and stores; start it with bots.telegram.runner."""
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set: the Telegram bot needs its token.")
    token = settings.telegram_bot_token.get_secret_value()
    redact_in_logs(token)
    quiet_http_logs()
    root = settings.telegram_api_base_url.rstrip("/")
    adapter = TelegramAdapter(settings, submitter, transcripts, media_store, library,
                              policy or DeliveryPolicy())
    application = (
        ApplicationBuilder().token(token)
        .base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")
        .request(HTTPXRequest(connection_pool_size=32, connect_timeout=10.0,
                              read_timeout=20.0, write_timeout=20.0, pool_timeout=10.0,
                              media_write_timeout=60.0))
        # getUpdates adds its long-poll timeout to read_timeout itself.
        .get_updates_request(HTTPXRequest(connection_pool_size=2, connect_timeout=10.0,
                                          read_timeout=10.0, write_timeout=10.0,
                                          pool_timeout=10.0))
        .rate_limiter(SendRateLimiter(max_retries=3))
        # Many people at once; each person's own turns stay in order (adapter locks).
        .concurrent_updates(True)
        .job_queue(None)  # the resend loop is an asyncio task (APScheduler is not installed)
        .post_init(_post_init)
        .post_stop(_post_stop)
        .build()
    )
    application.bot_data[ADAPTER_KEY] = adapter
    _add_handlers(application, adapter)
    return application


def _add_handlers(application: Application[Any, Any, Any, Any, Any, Any],
                  adapter: TelegramAdapter) -> None:
    commands = Commands(adapter)
    application.add_handler(TypeHandler(Update, adapter.gate), group=-1)
    for name, callback in (("start", commands.start), ("help", commands.help),
                           ("reset", commands.reset), ("forget", commands.forget),
                           ("stickers", commands.stickers)):
        application.add_handler(CommandHandler(name, callback))
    application.add_handler(CallbackQueryHandler(commands.forget_button, pattern=r"^forget:"))
    content = ((filters.TEXT & ~filters.COMMAND) | filters.Sticker.ALL | filters.PHOTO
               | filters.Document.ALL)
    application.add_handler(MessageHandler(filters.UpdateType.MESSAGE & content,
                                           adapter.on_content))
    application.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.COMMAND,
                                           commands.unknown))
    application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, adapter.on_other))
    application.add_error_handler(_on_error)


async def _post_init(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Runs once before updates are taken: the command menu and the resend loop."""
    await application.bot.set_my_commands(COMMANDS)
    adapter_of(application).start_resender(application.bot)


async def _post_stop(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    adapter = adapter_of(application)
    await adapter.stop_resender()
    await adapter.inbound.aclose()


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    # The update itself is not logged: it holds what the person wrote.
    kind = type(update).__name__ if update is not None else "no update"
    log.error("error while handling a %s", kind, exc_info=context.error)
