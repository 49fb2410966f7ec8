"""Building the discord.py Client (with its CommandTree), and starting and stopping it.

    client = build_discord_client(settings, submitter, transcripts, media_store, library)
    await start_discord(client, settings)   # login, slash commands synced, gateway up
    ...
    await stop_discord(client)

DISCORD_API_BASE_URL (the REST root, e.g. http://127.0.0.1:port/api/v10) and
DISCORD_GATEWAY_URL point the client at another server (the tests' fake); the CDN is
taken to be the REST server's /cdn then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
import yarl
from discord import app_commands

from bots.discord.commands import FORGET_PREFIX, add_commands, on_forget_button
from bots.discord.handlers import DiscordAdapter
from bots.ledger import DeliveryPolicy
from bots.redact import quiet_http_logs, redact_in_logs
from bots.settings import BotSettings
from engine.stickers import StickerLibrary
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from tasks.submit import Submitter

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0


class StickerBotClient(discord.Client):
    """discord.Client with the adapter, the slash-command tree and the connect task."""

    def __init__(self, settings: BotSettings, submitter: Submitter, transcripts: TranscriptStore,
                 media_store: MediaStore, library: StickerLibrary, policy: DeliveryPolicy,
                 **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable it for the bot in the portal
        super().__init__(intents=intents, **options)
        self.settings = settings
        self.adapter = DiscordAdapter(self, settings, submitter, transcripts, media_store,
                                      library, policy)
        self.tree = app_commands.CommandTree(self)
        add_commands(self.tree, self.adapter)
        self.connect_task: asyncio.Task[None] | None = None
        self.synced: list[app_commands.AppCommand] = []

    async def setup_hook(self) -> None:
        """After login, before the gateway: sync the slash commands, start resending."""
        self.synced = await self.tree.sync()
        log.info("discord slash commands synced: %s", ", ".join(c.name for c in self.synced))
        self.adapter.resender.start()

    async def on_ready(self) -> None:
        guilds = len(self.guilds)
        log.info("discord bot connected as user %s in %d servers",
                 self.user.id if self.user else "?", guilds)

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter.on_message(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type != discord.InteractionType.component:
            return  # slash commands go to the tree
        custom_id = str((interaction.data or {}).get("custom_id", ""))
        if custom_id.startswith(FORGET_PREFIX):
            await on_forget_button(self.adapter, interaction)


def build_discord_client(settings: BotSettings, submitter: Submitter,
                         transcripts: TranscriptStore, media_store: MediaStore,
                         library: StickerLibrary, *, policy: DeliveryPolicy | None = None,
                         **options: Any) -> StickerBotClient:
    """The bot, wired to the shared queue and stores; start it with start_discord."""
    if settings.discord_bot_token is None:
        raise ValueError("DISCORD_BOT_TOKEN is not set: the Discord bot needs its token.")
    redact_in_logs(settings.discord_bot_token.get_secret_value())
    quiet_http_logs()
    # discord.http logs request bodies (what people wrote) at DEBUG.
    logging.getLogger("discord.http").setLevel(logging.INFO)
    # A text bot: no voice, so no warnings about the voice libraries at every start.
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False
    return StickerBotClient(settings, submitter, transcripts, media_store, library,
                            policy or DeliveryPolicy(), **options)


def point_at(settings: BotSettings) -> None:
    """Use another REST root, gateway and CDN when the settings name them."""
    if settings.discord_api_base_url:
        root = settings.discord_api_base_url.rstrip("/")
        discord.http.Route.BASE = root
        # The fake (and a self-hosted proxy) serves the CDN beside the API.
        server = str(yarl.URL(root).origin())
        discord.asset.Asset.BASE = f"{server}/cdn"
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


async def start_discord(client: StickerBotClient, settings: BotSettings,
                        ready_timeout_s: float = READY_TIMEOUT_S) -> None:
    """Log in (slash commands sync in setup_hook), connect, and wait until READY."""
    assert settings.discord_bot_token is not None
    point_at(settings)
    await client.login(settings.discord_bot_token.get_secret_value())
    client.connect_task = asyncio.create_task(client.connect(reconnect=True),
                                              name="discord-gateway")
    ready = asyncio.create_task(client.wait_until_ready())
    done, _ = await asyncio.wait({ready, client.connect_task}, timeout=ready_timeout_s,
                                 return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if client.connect_task in done:
            await client.close()
            client.connect_task.result()  # raises why the gateway refused us
        raise TimeoutError(f"Discord gateway not ready after {ready_timeout_s:.0f} s")
    log.info("discord bot ready")


async def stop_discord(client: StickerBotClient) -> None:
    """Close the gateway and HTTP session, stop resending, close downloads."""
    await client.adapter.aclose()
    if not client.is_closed():
        await client.close()
    task, client.connect_task = client.connect_task, None
    if task is not None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 10)
