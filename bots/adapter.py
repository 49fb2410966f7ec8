"""What the Telegram and Discord adapters share (bots/telegram/handlers.py and
bots/discord/handlers.py are thin subclasses): one lock per (chat, person), the gate's
order once the platform has found a message addressed to us (handled before? flooding?
claim it once), and answering a turn, the first time and again from the resend loop.

A subclass names its `platform` and supplies the hooks: how to read a turn, show typing,
send a flood notice, whom an answer replies to, the payload of a text, and how to deliver
one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from bots.ledger import DeliveryPolicy, Ledger
from bots.ratelimit import FloodGuard
from bots.resend import Resender, submit_or_postpone
from bots.settings import BotSettings
from engine.media import MediaError
from engine.stickers import StickerLibrary
from engine.types import Reply, UserTurn
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from tasks.submit import Submitter

log = logging.getLogger(__name__)

M = TypeVar("M")  # the platform's message type


class ChatAdapter(ABC, Generic[M]):
    platform: ClassVar[str]

    def __init__(self, settings: BotSettings, submitter: Submitter, transcripts: TranscriptStore,
                 media_store: MediaStore, library: StickerLibrary, policy: DeliveryPolicy,
                 *, resend_name: str) -> None:
        self.settings = settings
        self.submitter = submitter
        self.transcripts = transcripts
        self.media_store = media_store
        self.library = library
        self.policy = policy
        self.ledger = Ledger(transcripts.db, self.platform)
        self.flood = FloodGuard(settings.rate_limit_per_minute, settings.rate_limit_burst,
                                chat_per_minute=settings.chat_rate_limit_per_minute,
                                chat_burst=settings.chat_rate_limit_burst)
        self.resender = Resender(self.ledger, policy, self._answer_again, self.deliver,
                                 name=resend_name)
        self.inflight = self.resender.inflight  # task ids being answered now: not resent
        # One lock per (chat, person): many people at once, one person's turns in order.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    # --- the platform's hooks ----------------------------------------------------------
    @abstractmethod
    async def read_turn(self, message: M, stickers_enabled: bool) -> UserTurn:
        """The turn of a message; a MediaError carries a sentence for the person."""

    @abstractmethod
    def typing(self, message: M) -> contextlib.AbstractAsyncContextManager[None]:
        """Show "typing..." in the message's chat while the body runs."""

    @abstractmethod
    async def send_notice(self, message: M, notice: str) -> None:
        """Tell the chat it floods (failures are logged, not raised)."""

    @abstractmethod
    def reply_to(self, message: M) -> Any:
        """What an answer to `message` replies to (None: a plain message)."""

    @abstractmethod
    def reply_to_again(self, turn: UserTurn) -> Any:
        """The same, for a turn answered later by the resend loop."""

    @abstractmethod
    def payload_for_text(self, text: str, user_id: str, reply_to: Any) -> dict[str, Any]:
        """The payload of a fixed text."""

    @abstractmethod
    async def deliver(self, task_id: str) -> str:
        """Send (the rest of) a stored answer; returns the delivery's state."""

    # --- shared ------------------------------------------------------------------------
    def payload_for_reply(self, reply: Reply, user_id: str, reply_to: Any,
                          stickers_enabled: bool) -> dict[str, Any]:
        """The payload of a reply: its text, and its sticker when the person has them on."""
        payload = self.payload_for_text(reply.text, user_id, reply_to)
        if reply.sticker is not None and stickers_enabled:
            payload["sticker_id"] = reply.sticker.id
            payload["sticker_path"] = reply.sticker.image_path
        return payload

    def lock_for(self, chat_id: int | str, user_id: int | str) -> asyncio.Lock:
        key = f"{chat_id}:{user_id}"
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def admit(self, message: M, task_id: str, chat_id: str, user_id: str,
                    user_name: str | None) -> bool:
        """The gate after the platform's own checks: False for a message handled before,
        one over the flood limits, or one a concurrent copy claimed."""
        if self.ledger.seen(task_id):
            log.info("%s was delivered again; it is already handled", task_id)
            return False
        notice = self.flood.check(user_id, chat_id)  # per person, then per chat
        if notice is not None:
            if notice:  # one notice per flood, not one per message
                await self.send_notice(message, notice)
            return False
        if not self.ledger.claim(task_id, chat_id, user_id, user_name):
            return False  # a concurrent copy of this message claimed it
        if not self.transcripts.user_active(self.platform, user_id):
            self.transcripts.set_user_active(self.platform, user_id, True)  # they wrote again
        return True

    async def answer(self, message: M, task_id: str, chat_id: int | str, user_id: str) -> None:
        """Answer an admitted message, after this person's earlier turns in this chat."""
        async with self.lock_for(chat_id, user_id):
            self.inflight.add(task_id)
            try:
                async with self.typing(message):
                    payload = await self._make_answer(message, task_id, user_id)
                if payload is not None:
                    self.ledger.set_payload(task_id, payload)
                    await self.deliver(task_id)
            finally:
                self.inflight.discard(task_id)

    async def _make_answer(self, message: M, task_id: str,
                           user_id: str) -> dict[str, Any] | None:
        """The payload to send; None when the queue could not answer yet (the resend loop
        answers it later)."""
        reply_to = self.reply_to(message)
        enabled = self.transcripts.stickers_enabled(self.platform, user_id)
        try:
            turn = await self.read_turn(message, enabled)
        except MediaError as error:
            log.info("%s refused: %s", task_id, error.code)
            return self.payload_for_text(error.user_message, user_id, reply_to)
        self.ledger.set_turn(task_id, turn.model_dump(mode="json"))
        reply = await submit_or_postpone(self.submitter, self.ledger, task_id, turn,
                                         self.policy.resend_interval_s)
        if reply is None:
            return None
        return self.payload_for_reply(reply, user_id, reply_to, enabled)

    async def _answer_again(self, task_id: str, turn_json: dict[str, Any] | None) -> bool:
        turn = UserTurn.model_validate(turn_json)
        reply = await submit_or_postpone(self.submitter, self.ledger, task_id, turn,
                                         self.policy.resend_interval_s)
        if reply is None:
            return False
        self.ledger.set_payload(task_id, self.payload_for_reply(
            reply, turn.user_id, self.reply_to_again(turn), turn.stickers_enabled))
        return True
