"""Running the adapters: the web chat, and the Telegram and Discord bots when their tokens
are set, in one asyncio loop that shares one queue submitter.

`stickerbot serve` runs all of them in one process (the embedded default); in the
production topology `stickerbot telegram`, `stickerbot discord` and `stickerbot review`
each run one, and processes without a web page serve /healthz and /metrics on
settings.health_port.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

import uvicorn

from bots.admission import BoundedSubmitter
from bots.settings import BotSettings
from bots.web.app import create_app
from engine.stickers import StickerLibrary
from storage.db import Database
from storage.media_store import MediaStore
from storage.transcript_store import transcript_store
from tasks.metrics import HealthServer
from tasks.submit import Submitter

log = logging.getLogger(__name__)


async def serve(settings: BotSettings, library: StickerLibrary, submitter: Submitter, *,
                web: bool = True, telegram: bool = True, discord: bool = True,
                extend_web: Callable[[Any], Any] | None = None) -> None:
    """Run until SIGINT or SIGTERM, then stop the bots cleanly.

    `extend_web` is called with the web chat app before it serves: the command mounts
    the review dashboard there (review/ sits above bots/, so bots never import it).
    """
    telegram_app = None
    discord_client = None
    health = None
    if settings.uses_embedded_queue:
        # One model answers every platform's turns: past the bound they are refused at
        # once (web: 503 and Retry-After; Telegram, Discord: the resend loop tries later).
        submitter = BoundedSubmitter(submitter, settings.max_waiting_turns)
    db = Database(settings.resolved_database_url)
    transcripts, media_store = transcript_store(settings, db), MediaStore(settings.media_dir)
    purger = None
    if settings.retention_days > 0:
        from storage.retention import run_purge_loop

        purger = asyncio.create_task(run_purge_loop(
            db, media_store, settings.retention_days, settings.purge_interval_s))
    try:
        if telegram and settings.telegram_bot_token is not None:
            from bots.telegram.app import build_telegram_application
            from bots.telegram.runner import start_telegram

            telegram_app = build_telegram_application(
                settings, submitter, transcripts, media_store, library)
            await start_telegram(telegram_app, settings)
        if discord and settings.discord_bot_token is not None:
            from bots.discord import build_discord_client, start_discord

            discord_client = build_discord_client(settings, submitter, transcripts,
                                                  media_store, library)
            await start_discord(discord_client, settings)
        if web:
            web_app = create_app(settings, submitter, library, transcripts=transcripts)
            if extend_web is not None:
                extend_web(web_app)
            server = web_server(settings, web_app)
            log.info("web chat on http://%s:%d", settings.http_host, settings.http_port)
            await server.serve()
        else:
            health = HealthServer(settings.health_host, settings.health_port,
                                  _bot_checks(telegram_app, discord_client)).start()
            await _until_stopped()
    finally:
        if purger is not None:
            purger.cancel()
        if health is not None:
            health.stop()
        if discord_client is not None:
            from bots.discord import stop_discord

            await stop_discord(discord_client)
        if telegram_app is not None:
            from bots.telegram.runner import stop_telegram

            await stop_telegram(telegram_app)
        db.dispose()


def web_server(settings: BotSettings, app: Any) -> uvicorn.Server:
    """The HTTP server of the web chat (and the dashboard mounted on it).

    X-Forwarded-For/-Proto are believed only from STICKERBOT_TRUSTED_PROXIES: uvicorn's
    default believes them from loopback, so a local client could pick its address and
    step around the per-address limits."""
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return uvicorn.Server(uvicorn.Config(
        app, host=settings.http_host, port=settings.http_port,
        log_level=settings.log_level.lower(), access_log=False,
        proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None))


def _bot_checks(telegram_app: Any, discord_client: Any) -> Callable[[], dict[str, bool]]:
    def checks() -> dict[str, bool]:
        status = {}
        if telegram_app is not None:
            status["telegram"] = bool(telegram_app.running)
        if discord_client is not None:
            status["discord"] = discord_client.is_ready() and not discord_client.is_closed()
        return status
    return checks


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
