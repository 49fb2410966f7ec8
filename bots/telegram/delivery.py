"""Sending answers to Telegram: plain-text chunks, then the sticker, exactly once each.

An answer is a payload stored in the ledger before the first send. Parts (text chunks,
then the sticker) are sent in order and each is recorded as sent before the next, so a
later resend continues where sending stopped instead of repeating it. Network errors and
5xx are retried a few times with backoff; after that the payload waits for the resend
loop. 403 (the person blocked the bot) marks them inactive and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image
from sqlalchemy.exc import IntegrityError
from telegram import Bot, InlineKeyboardMarkup, InputFile, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.warnings import PTBDeprecationWarning

from bots.ledger import DeliveryPolicy, Ledger
from bots.render import split_text, utf16_len
from bots.typing_indicator import keep_typing
from engine.media import encode_webp
from engine.safety.sticker_check import looks_generated
from engine.stickers import StickerLibrary
from storage.transcript import TranscriptStore

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096
TYPING_EVERY_S = 4.0
T = TypeVar("T")


def payload_for_text(text: str, user_id: str, *, reply_to: int | None = None,
                     markup: InlineKeyboardMarkup | None = None) -> dict[str, Any]:
    return {"texts": split_text(text, MAX_MESSAGE, measure=utf16_len), "sticker_id": None,
            "sticker_path": None, "user_id": user_id, "reply_to": reply_to,
            "markup": markup.to_dict() if markup else None}


def reply_to_for(chat_id: str, message_id: str) -> int | None:
    """In groups (negative chat ids) answer as a reply, so it is clear whom we answer."""
    return int(message_id) if chat_id.startswith("-") else None


def typing(bot: Bot, chat_id: int,
           every_s: float = TYPING_EVERY_S) -> contextlib.AbstractAsyncContextManager[None]:
    """Show "typing..." (Telegram clears it after ~5 s, so refresh it) while the body runs."""
    return keep_typing(lambda: bot.send_chat_action(chat_id, ChatAction.TYPING), every_s)


class Outbox:
    def __init__(self, ledger: Ledger, transcripts: TranscriptStore, library: StickerLibrary,
                 policy: DeliveryPolicy) -> None:
        self.ledger = ledger
        self.transcripts = transcripts
        self.library = library
        self.policy = policy

    async def deliver(self, bot: Bot, task_id: str) -> str:
        """Send what is left of a pending answer; returns the delivery's state after."""
        row = self.ledger.get(task_id)
        if row is None or row.state != "pending" or row.payload is None:
            return row.state if row else "gone"
        payload = row.payload
        texts: list[str] = payload.get("texts") or []
        has_sticker = bool(payload.get("sticker_id") or payload.get("sticker_path"))
        total = len(texts) + (1 if has_sticker else 0)
        chat_id = int(row.chat_id)
        for index in range(row.parts_sent, total):
            try:
                if index < len(texts):
                    await self._retrying(lambda i=index: self._send_text(  # type: ignore[misc]
                        bot, chat_id, texts, i, payload))
                else:
                    await self._send_sticker(bot, chat_id, payload)
            except Forbidden as error:
                log.info("delivery %s: user blocked the bot or left; marking inactive", task_id)
                self.transcripts.set_user_active("telegram", payload["user_id"], False)
                self.ledger.finish(task_id, "abandoned", error.message)
                return "abandoned"
            except BadRequest as error:
                if index >= len(texts):
                    # A refused sticker should not hold back a reply whose words arrived.
                    log.warning("delivery %s: sticker refused: %s", task_id, error.message)
                    break
                log.warning("delivery %s: message refused: %s", task_id, error.message)
                self.ledger.finish(task_id, "abandoned", error.message)
                return "abandoned"
            except (NetworkError, RetryAfter) as error:
                delay = self.policy.resend_delay(row.attempts)
                attempts = self.ledger.postpone(task_id, str(error), delay)
                log.warning("delivery %s: part %d not sent after %d tries (%s); will resend "
                            "(attempt %d)", task_id, index + 1, self.policy.attempts,
                            type(error).__name__, attempts)
                return "pending"
            self.ledger.part_sent(task_id, index + 1)
        self.ledger.finish(task_id, "sent")
        return "sent"

    async def _retrying(self, send: Callable[[], Awaitable[T]]) -> T:
        """Retry network errors, 5xx and timeouts with backoff; anything else is final."""
        for attempt in range(self.policy.attempts):
            last = attempt == self.policy.attempts - 1
            try:
                return await send()
            except BadRequest:
                raise  # a subclass of NetworkError, but the request itself is wrong
            except RetryAfter as error:
                if last:
                    raise
                await asyncio.sleep(_seconds(error))
            except NetworkError:
                if last:
                    raise
                await asyncio.sleep(self.policy.backoff_s * 2 ** attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send_text(self, bot: Bot, chat_id: int, texts: list[str], index: int,
                         payload: dict[str, Any]) -> None:
        reply_to = payload.get("reply_to") if index == 0 else None
        markup = payload.get("markup") if index == len(texts) - 1 else None
        # No parse_mode: replies are plain text, so no character can break the markup.
        await bot.send_message(
            chat_id, texts[index],
            reply_parameters=(ReplyParameters(reply_to, allow_sending_without_reply=True)
                              if reply_to else None),
            reply_markup=InlineKeyboardMarkup.de_json(markup, bot) if markup else None)

    async def _send_sticker(self, bot: Bot, chat_id: int, payload: dict[str, Any]) -> None:
        sticker_id = payload.get("sticker_id")
        if sticker_id and sticker_id in self.library:
            file_id = self.ledger.sticker_file_id(sticker_id)
            if file_id:
                try:
                    await self._retrying(lambda: bot.send_sticker(chat_id, file_id))
                    return
                except BadRequest as error:
                    log.info("cached file_id of %s refused (%s); uploading again",
                             sticker_id, error.message)
                    self.ledger.forget_sticker(sticker_id)
            data = self.library.webp_file(sticker_id).read_bytes()
            sent = await self._retrying(lambda: bot.send_sticker(
                chat_id, InputFile(data, filename=f"{sticker_id}.webp")))
            if sent.sticker is not None:
                with contextlib.suppress(IntegrityError):  # a racing upload stored it first
                    self.ledger.remember_sticker(sticker_id, sent.sticker.file_id)
            return
        path = payload.get("sticker_path")
        # A generated sticker (no library file to cache); nothing else is ever sent.
        if path and looks_generated(path) and Path(path).is_file():
            data = await asyncio.to_thread(_webp_of, Path(path))
            await self._retrying(lambda: bot.send_sticker(
                chat_id, InputFile(data, filename="sticker.webp")))
            return
        log.warning("sticker %s has no file to send; sending the text only", sticker_id)


def _seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the type becomes timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        wait = error.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


def _webp_of(path: Path) -> bytes:
    with Image.open(path) as image:
        return encode_webp(image, 512)
