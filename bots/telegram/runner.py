"""Starting and stopping the bot: long polling (default) or a webhook.

Webhook mode is chosen by TELEGRAM_WEBHOOK_URL; PTB's own server then listens on
telegram_webhook_listen:telegram_webhook_port and refuses any request that lacks the
secret token (TELEGRAM_WEBHOOK_SECRET, or a random one made at each start).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import signal
import time
from typing import Any
from urllib.parse import urlsplit

from telegram import Update
from telegram.error import Conflict, TelegramError
from telegram.ext import Application

from bots.settings import BotSettings

log = logging.getLogger(__name__)

App = Application[Any, Any, Any, Any, Any, Any]
SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
CONFLICT_REPEAT_S = 300.0


class PollingErrors:
    """PTB's polling loop retries with backoff; this says clearly what went wrong.

    409 Conflict means another process polls with the same token (or a webhook is set):
    logged as an error once, and again only every few minutes while it lasts.
    """

    def __init__(self, repeat_s: float = CONFLICT_REPEAT_S) -> None:
        self.repeat_s = repeat_s
        self._last_conflict = -float("inf")
        self.conflicts = 0

    def __call__(self, error: TelegramError) -> None:
        if isinstance(error, Conflict):
            self.conflicts += 1
            now = time.monotonic()
            if now - self._last_conflict >= self.repeat_s:
                self._last_conflict = now
                log.error(
                    "Telegram refused getUpdates with 409 Conflict: another instance of this "
                    "bot is polling with the same token, or a webhook is set (%s). Stop the "
                    "other instance; this one keeps retrying.", error.message)
            return
        log.warning("polling for updates failed (%s: %s); retrying", type(error).__name__,
                    error.message)


def webhook_secret(settings: BotSettings) -> str:
    if settings.telegram_webhook_secret is not None:
        secret = settings.telegram_webhook_secret.get_secret_value()
        if not SECRET_TOKEN.match(secret):
            raise ValueError("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of "
                             "A-Z, a-z, 0-9, _ and -.")
        return secret
    return secrets.token_urlsafe(32)


async def start_telegram(application: App, settings: BotSettings, *,
                         poll_timeout: int = 30, poll_interval: float = 0.0) -> None:
    """Initialise, run post_init (commands, resend loop), then poll or serve the webhook."""
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    await application.start()
    updater = application.updater
    assert updater is not None
    if settings.telegram_webhook_url:
        url = settings.telegram_webhook_url
        path = urlsplit(url).path.strip("/") or "telegram"
        await updater.start_webhook(
            listen=settings.telegram_webhook_listen, port=settings.telegram_webhook_port,
            url_path=path, webhook_url=url, secret_token=webhook_secret(settings),
            allowed_updates=Update.ALL_TYPES)
        log.info("telegram bot listening for webhook calls on %s:%d/%s",
                 settings.telegram_webhook_listen, settings.telegram_webhook_port, path)
    else:
        await updater.start_polling(poll_interval=poll_interval, timeout=poll_timeout,
                                    allowed_updates=Update.ALL_TYPES,
                                    error_callback=PollingErrors())
        log.info("telegram bot polling for updates")


async def stop_telegram(application: App) -> None:
    """Stop taking updates, finish the ones in hand, then close everything."""
    updater = application.updater
    if updater is not None and updater.running:
        await updater.stop()
    if application.running:
        await application.stop()
    if application.post_stop is not None:
        await application.post_stop(application)
    await application.shutdown()


async def run_telegram(application: App, settings: BotSettings) -> None:
    """Run until SIGINT/SIGTERM or cancellation (the `stickerbot serve` entry)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    try:
        await start_telegram(application, settings)
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await stop_telegram(application)
