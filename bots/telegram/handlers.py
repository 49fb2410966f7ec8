"""The Telegram adapter: which updates are ours (the gate), fixed answers for commands,
the resend loop's bot, and Telegram's hooks for bots/adapter.py, which claims messages
once and answers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

from telegram import Bot, Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bots.adapter import ChatAdapter
from bots.settings import BotSettings
from bots.telegram import delivery
from bots.telegram.delivery import DeliveryPolicy, Outbox, reply_to_for
from bots.telegram.inbound import PLATFORM, Inbound, task_id_of
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


class TelegramAdapter(ChatAdapter[Message]):
    platform = PLATFORM

    def __init__(self, settings: BotSettings, submitter: Submitter, transcripts: TranscriptStore,
                 media_store: MediaStore, library: StickerLibrary,
                 policy: DeliveryPolicy) -> None:
        super().__init__(settings, submitter, transcripts, media_store, library, policy,
                         resend_name="tg-resend")
        self.outbox = Outbox(self.ledger, transcripts, library, policy)
        self.inbound = Inbound(settings, media_store)
        self._bot: Bot | None = None  # set by start_resender, before updates are taken

    @property
    def bot(self) -> Bot:
        assert self._bot is not None, "start_resender(bot) first"
        return self._bot

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
        if not await self.admit(message, task_id_of(message), str(message.chat_id),
                                str(user.id), user.first_name):
            raise ApplicationHandlerStop

    def lock_of(self, message: Message) -> asyncio.Lock:
        """The lock of the message's (chat, person)."""
        return self.lock_for(message.chat_id, message.from_user.id if message.from_user else 0)

    # --- answering ---------------------------------------------------------------
    async def answer_text(self, bot: Bot, message: Message, text: str,
                          **extra: Any) -> None:
        """Send a fixed answer (commands, refusals) through the ledger, like any reply."""
        task_id = task_id_of(message)
        user_id = str(message.from_user.id) if message.from_user else "0"
        self.ledger.set_payload(task_id, delivery.payload_for_text(
            text, user_id, reply_to=self.reply_to(message), **extra))
        async with self.lock_of(message):  # after this person's answer in progress
            await self.outbox.deliver(bot, task_id)

    async def on_content(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None and message.from_user is not None
        await self.answer(message, task_id_of(message), message.chat_id,
                          str(message.from_user.id))

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

    # --- ChatAdapter's hooks --------------------------------------------------------------
    async def read_turn(self, message: Message, stickers_enabled: bool) -> UserTurn:
        return await self.inbound.turn(self.bot, message, stickers_enabled)

    def typing(self, message: Message) -> contextlib.AbstractAsyncContextManager[None]:
        return delivery.typing(self.bot, message.chat_id)

    async def send_notice(self, message: Message, notice: str) -> None:
        try:
            await self.bot.send_message(message.chat_id, notice)
        except TelegramError as error:
            log.warning("flood notice not sent: %s", error)

    def reply_to(self, message: Message) -> int | None:
        return reply_to_for(str(message.chat_id), str(message.message_id))

    def reply_to_again(self, turn: UserTurn) -> int | None:
        return reply_to_for(turn.chat_id, turn.message_id)

    def payload_for_text(self, text: str, user_id: str, reply_to: Any) -> dict[str, Any]:
        return delivery.payload_for_text(text, user_id, reply_to=reply_to)

    async def deliver(self, task_id: str) -> str:
        return await self.outbox.deliver(self.bot, task_id)
