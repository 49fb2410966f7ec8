"""The adapter's core: which messages are ours, claiming them once, answering them, and
the resend loop for answers that could not be sent yet.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from typing import Any

from telegram import Bot, Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bots.ledger import Ledger
from bots.ratelimit import FloodGuard
from bots.resend import Resender, submit_or_postpone
from bots.telegram.delivery import (
    DeliveryPolicy,
    Outbox,
    payload_for_reply,
    payload_for_text,
    reply_to_for,
    typing,
)
from bots.telegram.inbound import PLATFORM, Inbound, TextTooLong, task_id_of
from engine.media import MediaError
from engine.settings import Settings
from engine.stickers import StickerLibrary
from engine.types import UserTurn
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from tasks.submit import Submitter

log = logging.getLogger(__name__)

def is_addressed(message: Message, bot: Bot) -> bool:
    """Private chats: always. Groups: a mention, a reply to the bot, or a command for us."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    reply = message.reply_to_message
    if reply is not None and reply.from_user is not None and reply.from_user.id == bot.id:
        return True
    username = (bot.username or "").lower()
    entities = message.parse_entities() or message.parse_caption_entities()
    for entity, text in entities.items():
        if entity.type == MessageEntity.MENTION and text[1:].lower() == username:
            return True
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            _, _, target = text.partition("@")
            return not target or target.lower() == username
    # Clients add mention entities; a raw "@name" in the text counts all the same.
    text = (message.text or message.caption or "").lower()
    return bool(username) and re.search(rf"@{re.escape(username)}\b", text) is not None


class TelegramAdapter:
    def __init__(self, settings: Settings, submitter: Submitter, transcripts: TranscriptStore,
                 media_store: MediaStore, library: StickerLibrary,
                 policy: DeliveryPolicy) -> None:
        self.settings = settings
        self.submitter = submitter
        self.transcripts = transcripts
        self.media_store = media_store
        self.library = library
        self.policy = policy
        self.ledger = Ledger(transcripts.db)
        self.outbox = Outbox(self.ledger, transcripts, library, policy)
        self.inbound = Inbound(settings, media_store)
        self.flood = FloodGuard(settings.rate_limit_per_minute, settings.rate_limit_burst,
                                chat_per_minute=settings.chat_rate_limit_per_minute,
                                chat_burst=settings.chat_rate_limit_burst)
        self._bot: Bot | None = None
        self.resender = Resender(self.ledger, policy, self._answer_again, self._deliver_later,
                                 name="tg-resend")
        self.inflight = self.resender.inflight  # task ids being answered now: not resent
        # One lock per (chat, person): concurrent updates, but one person's turns in order.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    # --- the gate: runs first for every update --------------------------------
    async def gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None:
            if update.edited_message is not None:  # edits are not new turns
                raise ApplicationHandlerStop
            return  # button presses go on to their handler
        user = message.from_user
        if user is None or user.is_bot or not is_addressed(message, context.bot):
            raise ApplicationHandlerStop
        task_id = task_id_of(message)
        if self.ledger.seen(task_id):
            log.info("%s was delivered again; it is already handled", task_id)
            raise ApplicationHandlerStop
        key = str(user.id)
        notice = self.flood.check(key, str(message.chat_id))  # per person, then per chat
        if notice is not None:
            if notice:  # one notice per flood, not one per message
                try:
                    await context.bot.send_message(message.chat_id, notice)
                except TelegramError as error:
                    log.warning("flood notice not sent: %s", error)
            raise ApplicationHandlerStop
        if not self.ledger.claim(task_id, str(message.chat_id), key, user.first_name):
            raise ApplicationHandlerStop  # a concurrent copy of this update claimed it
        if not self.transcripts.user_active(PLATFORM, key):
            self.transcripts.set_user_active(PLATFORM, key, True)  # they wrote again

    def lock_for(self, message: Message) -> asyncio.Lock:
        key = f"{message.chat_id}:{message.from_user.id if message.from_user else 0}"
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    # --- answering ---------------------------------------------------------------
    async def answer_text(self, bot: Bot, message: Message, text: str,
                          **extra: Any) -> None:
        """Send a fixed answer (commands, refusals) through the ledger, like any reply."""
        task_id = task_id_of(message)
        user_id = str(message.from_user.id) if message.from_user else "0"
        reply_to = reply_to_for(str(message.chat_id), str(message.message_id))
        self.ledger.set_payload(task_id, payload_for_text(text, user_id, reply_to=reply_to,
                                                          **extra))
        async with self.lock_for(message):  # after this person's answer in progress
            await self.outbox.deliver(bot, task_id)

    async def on_content(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None and message.from_user is not None
        task_id = task_id_of(message)
        user_id = str(message.from_user.id)
        async with self.lock_for(message):
            self.inflight.add(task_id)
            try:
                async with typing(context.bot, message.chat_id):
                    payload = await self._make_answer(context.bot, message, task_id, user_id)
                if payload is not None:
                    self.ledger.set_payload(task_id, payload)
                    await self.outbox.deliver(context.bot, task_id)
            finally:
                self.inflight.discard(task_id)

    async def _make_answer(self, bot: Bot, message: Message, task_id: str,
                           user_id: str) -> dict[str, Any] | None:
        reply_to = reply_to_for(str(message.chat_id), str(message.message_id))
        enabled = self.transcripts.stickers_enabled(PLATFORM, user_id)
        try:
            turn = await self.inbound.turn(bot, message, enabled)
        except (MediaError, TextTooLong) as error:
            log.info("%s refused: %s", task_id, getattr(error, "code", "too_long"))
            return payload_for_text(error.user_message, user_id, reply_to=reply_to)
        self.ledger.set_turn(task_id, turn.model_dump(mode="json"))
        reply = await submit_or_postpone(self.submitter, self.ledger, task_id, turn,
                                         self.policy.resend_interval_s)
        if reply is None:
            return None
        return payload_for_reply(reply, user_id, reply_to=reply_to, stickers_enabled=enabled)

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None
        await self.answer_text(context.bot, message, "I can read text, stickers and pictures: "
                                                     "send me one of those and I'll answer.")

    # --- the resend loop (bots.resend) ------------------------------------------------
    def start_resender(self, bot: Bot) -> None:
        self._bot = bot
        self.resender.start()

    async def stop_resender(self) -> None:
        await self.resender.stop()

    async def resend_due(self, bot: Bot, any_pending: bool = False) -> None:
        """Send answers that failed before, and answer turns left unanswered."""
        self._bot = bot
        await self.resender.resend_due(any_pending=any_pending)

    async def _deliver_later(self, task_id: str) -> str:
        assert self._bot is not None, "start_resender(bot) first"
        return await self.outbox.deliver(self._bot, task_id)

    async def _answer_again(self, task_id: str, turn_json: dict[str, Any] | None) -> bool:
        turn = UserTurn.model_validate(turn_json)
        reply = await submit_or_postpone(self.submitter, self.ledger, task_id, turn,
                                         self.policy.resend_interval_s)
        if reply is None:
            return False
        self.ledger.set_payload(task_id, payload_for_reply(
            reply, turn.user_id, reply_to=reply_to_for(turn.chat_id, turn.message_id),
            stickers_enabled=turn.stickers_enabled))
        return True
