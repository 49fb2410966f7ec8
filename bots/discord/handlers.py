"""The Discord adapter: which messages are ours (the gate) and Discord's hooks for
bots/adapter.py, which claims them once, answers them (typing shown meanwhile) and runs
the resend loop for answers not sent yet.

DMs are always answered; in servers only a mention of the bot, a reply to one of its
messages, or any message in a channel enabled with /channel enable.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import discord

from bots.adapter import ChatAdapter
from bots.discord import delivery
from bots.discord.channels import EnabledChannels
from bots.discord.delivery import TYPING_EVERY_S, Outbox
from bots.discord.inbound import PLATFORM, Inbound, task_id_of
from bots.ledger import DeliveryPolicy
from bots.settings import BotSettings
from bots.typing_indicator import keep_typing
from engine.stickers import StickerLibrary
from engine.types import UserTurn
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from tasks.submit import Submitter

log = logging.getLogger(__name__)

ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)


def is_addressed(message: discord.Message, me: discord.abc.Snowflake,
                 channels: EnabledChannels) -> bool:
    if message.guild is None:
        return True
    if any(user.id == me.id for user in message.mentions):
        return True
    if f"<@{me.id}>" in message.content or f"<@!{me.id}>" in message.content:
        return True
    ref = message.reference
    if ref is not None:
        resolved = ref.resolved if ref.resolved is not None else ref.cached_message
        if isinstance(resolved, discord.Message) and resolved.author.id == me.id:
            return True
    return message.channel.id in channels


class DiscordAdapter(ChatAdapter[discord.Message]):
    platform = PLATFORM

    def __init__(self, client: discord.Client, settings: BotSettings, submitter: Submitter,
                 transcripts: TranscriptStore, media_store: MediaStore,
                 library: StickerLibrary, policy: DeliveryPolicy) -> None:
        super().__init__(settings, submitter, transcripts, media_store, library, policy,
                         resend_name="discord-resend")
        self.client = client
        self.channels = EnabledChannels(transcripts.db, PLATFORM)
        self.outbox = Outbox(client, self.ledger, transcripts, library, policy)
        self.inbound = Inbound(settings, media_store)

    # --- the gate ------------------------------------------------------------------
    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        author = message.author
        if me is None or author.bot or author.id == me.id or message.type not in ANSWERED_TYPES:
            return
        if not is_addressed(message, me, self.channels):
            return
        task_id = task_id_of(message)
        if await self.admit(message, task_id, str(message.channel.id), str(author.id),
                            author.display_name):
            await self.answer(message, task_id, message.channel.id, str(author.id))

    async def aclose(self) -> None:
        await self.resender.stop()
        await self.inbound.aclose()

    # --- ChatAdapter's hooks --------------------------------------------------------------
    async def read_turn(self, message: discord.Message, stickers_enabled: bool) -> UserTurn:
        me = self.client.user
        return await self.inbound.turn(message, me.id if me else 0, stickers_enabled)

    def typing(self, message: discord.Message) -> contextlib.AbstractAsyncContextManager[None]:
        return keep_typing(message.channel.typing, TYPING_EVERY_S)

    async def send_notice(self, message: discord.Message, notice: str) -> None:
        try:
            await message.channel.send(notice)
        except discord.DiscordException as error:
            log.warning("flood notice not sent: %s", type(error).__name__)

    def reply_to(self, message: discord.Message) -> str | None:
        return str(message.id) if message.guild is not None else None

    def reply_to_again(self, turn: UserTurn) -> str | None:
        channel = self.client.get_channel(int(turn.chat_id))
        in_guild = channel is not None and getattr(channel, "guild", None) is not None
        return turn.message_id if in_guild else None

    def payload_for_text(self, text: str, user_id: str, reply_to: Any) -> dict[str, Any]:
        return delivery.payload_for_text(text, user_id, reply_to=reply_to)

    async def deliver(self, task_id: str) -> str:
        return await self.outbox.deliver(task_id)
