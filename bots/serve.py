"""`stickerbot serve`: the web chat, and the Telegram and Discord bots when their tokens
are set, in one asyncio loop that shares one queue submitter."""

from __future__ import annotations

import logging

import uvicorn

from bots.web.app import create_app
from engine.settings import Settings
from engine.stickers import StickerLibrary
from storage.db import Database
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from tasks.submit import TurnSubmitter

log = logging.getLogger(__name__)


async def serve(settings: Settings, library: StickerLibrary, submitter: TurnSubmitter) -> None:
    """Run until SIGINT or SIGTERM (uvicorn catches them), then stop the bots cleanly."""
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings, submitter, library), host=settings.http_host,
        port=settings.http_port, log_level=settings.log_level.lower(), access_log=False))
    telegram = None
    discord_client = None
    db = Database(settings.resolved_database_url)
    transcripts, media_store = TranscriptStore(db), MediaStore(settings.media_dir)
    try:
        if settings.telegram_bot_token is not None:
            from bots.telegram.app import build_telegram_application
            from bots.telegram.runner import start_telegram

            telegram = build_telegram_application(
                settings, submitter, transcripts, media_store, library)
            await start_telegram(telegram, settings)
        if settings.discord_bot_token is not None:
            from bots.discord import build_discord_client, start_discord

            discord_client = build_discord_client(settings, submitter, transcripts,
                                                  media_store, library)
            await start_discord(discord_client, settings)
        log.info("web chat on http://%s:%d", settings.http_host, settings.http_port)
        await server.serve()
    finally:
        if discord_client is not None:
            from bots.discord import stop_discord

            await stop_discord(discord_client)
        if telegram is not None:
            from bots.telegram.runner import stop_telegram

            await stop_telegram(telegram)
        db.dispose()
