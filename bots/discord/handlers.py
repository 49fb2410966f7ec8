"""The Discord adapter's core: which messages are ours, claiming them once, answering
them (typing shown meanwhile), and the resend loop for answers not sent yet.

DMs are always answered; in servers only a mention of the bot, a reply to one of its
messages, or any message in a channel enabled with /channel enable.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

import discord

from bots.discord.channels import EnabledChannels
from bots.discord.delivery import (
    TYPING_EVERY_S,
    Outbox,
    payload_for_reply,
    payload_for_text,
)
from bots.discord.inbound import PLATFORM, Inbound, task_id_of
from bots.ledger import DeliveryPolicy, Ledger
from bots.ratelimit import FloodGuard
from bots.resend import Resender, submit_or_postpone
from bots.typing_indicator import keep_typing
from engine.media import MediaError
from engine.settings import Settings
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


class DiscordAdapter:
    def __init__(self, client: discord.Client, settings: Settings, submitter: Submitter,
                 transcripts: TranscriptStore, media_store: MediaStore,
                 library: StickerLibrary, policy: DeliveryPolicy) -> None:
        self.client = client
        self.settings = settings
        self.submitter = submitter
        self.transcripts = transcripts
        self.media_store = media_store
        self.library = library
        self.policy = policy
        self.ledger = Ledger(transcripts.db, PLATFORM)
        self.channels = EnabledChannels(transcripts.db, PLATFORM)
        self.outbox = Outbox(client, self.ledger, transcripts, library, policy)
        self.inbound = Inbound(settings, media_store)
        self.flood = FloodGuard(settings.rate_limit_per_minute, settings.rate_limit_burst,
                                chat_per_minute=settings.chat_rate_limit_per_minute,
                                chat_burst=settings.chat_rate_limit_burst)
        self.resender = Resender(self.ledger, policy, self._answer_again, self.outbox.deliver,
                                 name="discord-resend")
        # One lock per (channel, person): many people at once, one person's turns in order.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    def lock_for(self, channel_id: int, user_id: int) -> asyncio.Lock:
        key = f"{channel_id}:{user_id}"
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    # --- the gate ------------------------------------------------------------------
    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        author = message.author
        if me is None or author.bot or author.id == me.id or message.type not in ANSWERED_TYPES:
            return
        if not is_addressed(message, me, self.channels):
            return
        task_id = task_id_of(message)
        if self.ledger.seen(task_id):
            log.info("%s was delivered again; it is already handled", task_id)
            return
        key = str(author.id)
        notice = self.flood.check(key, str(message.channel.id))  # per person, then per chat
        if notice is not None:
            if notice:  # one notice per flood, not one per message
                try:
                    await message.channel.send(notice)
                except discord.DiscordException as error:
                    log.warning("flood notice not sent: %s", type(error).__name__)
            return
        if not self.ledger.claim(task_id, str(message.channel.id), key, author.display_name):
            return  # a concurrent copy of this message claimed it
        if not self.transcripts.user_active(PLATFORM, key):
            self.transcripts.set_user_active(PLATFORM, key, True)  # they wrote again
        await self.answer(message, task_id)

    # --- answering -------------------------------------------------------------------
    async def answer(self, message: discord.Message, task_id: str) -> None:
        user_id = str(message.author.id)
        channel = message.channel
        async with self.lock_for(channel.id, message.author.id):
            self.resender.inflight.add(task_id)
            try:
                async with keep_typing(channel.typing, TYPING_EVERY_S):
                    payload = await self._make_answer(message, task_id, user_id)
                if payload is not None:
                    self.ledger.set_payload(task_id, payload)
                    await self.outbox.deliver(task_id)
            finally:
                self.resender.inflight.discard(task_id)

    async def _make_answer(self, message: discord.Message, task_id: str,
                           user_id: str) -> dict[str, Any] | None:
        reply_to = str(message.id) if message.guild is not None else None
        enabled = self.transcripts.stickers_enabled(PLATFORM, user_id)
        me = self.client.user
        try:
            turn = await self.inbound.turn(message, me.id if me else 0, enabled)
        except MediaError as error:
            log.info("%s refused: %s", task_id, error.code)
            return payload_for_text(error.user_message, user_id, reply_to=reply_to)
        self.ledger.set_turn(task_id, turn.model_dump(mode="json"))
        reply = await submit_or_postpone(self.submitter, self.ledger, task_id, turn,
                                         self.policy.resend_interval_s)
        if reply is None:
            return None
        return payload_for_reply(reply, user_id, reply_to=reply_to, stickers_enabled=enabled)

    async def _answer_again(self, task_id: str, turn_json: dict[str, Any] | None) -> bool:
        turn = UserTurn.model_validate(turn_json)
        reply = await submit_or_postpone(self.submitter, self.ledger, task_id, turn,
                                         self.policy.resend_interval_s)
        if reply is None:
            return False
        channel = self.client.get_channel(int(turn.chat_id))
        in_guild = channel is not None and getattr(channel, "guild", None) is not None
        self.ledger.set_payload(task_id, payload_for_reply(
            reply, turn.user_id, reply_to=turn.message_id if in_guild else None,
            stickers_enabled=turn.stickers_enabled))
        return True

    async def aclose(self) -> None:
        await self.resender.stop()
        await self.inbound.aclose()
