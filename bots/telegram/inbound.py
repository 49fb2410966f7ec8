"""Turning a Telegram message into a UserTurn: who, which chat, the text, and the media.

Media are checked against the size cap before anything is downloaded (the message's
file_size, then getFile's), downloaded with the cap enforced while reading (a server
may under-declare), decoded by engine.media so a damaged or unknown file becomes a
sentence for the person, and the original bytes are kept in the MediaStore.
"""

from __future__ import annotations

import asyncio
import logging
import re

import httpx
from telegram import Bot, Message, PhotoSize
from telegram.error import TelegramError

from bots.settings import BotSettings
from engine.media import SUPPORTED_FORMATS, MediaError, MediaLimits, decode_bytes
from engine.media.base import SEND_INSTEAD, normalise_hint
from engine.types import Media, MediaKind, UserTurn
from storage.media_store import MediaStore

log = logging.getLogger(__name__)

PLATFORM = "telegram"


def fetch_failed() -> MediaError:
    return MediaError("fetch_failed", "I couldn't fetch that file from Telegram just now. "
                                      "Please send it again in a moment.")


def task_id_of(message: Message) -> str:
    return f"{PLATFORM}:{message.chat_id}:{message.message_id}"


def without_mention(text: str, username: str) -> str:
    """'@bot how are you' -> 'how are you': the responder should not read the bot's name."""
    pattern = re.compile(rf"@{re.escape(username)}\b[,:]?", re.IGNORECASE)
    return re.sub(r"\s{2,}", " ", pattern.sub(" ", text)).strip()


def largest_photo_under(photos: tuple[PhotoSize, ...], cap: int) -> PhotoSize:
    """The biggest size Telegram offers that fits the cap (sizes without a byte count fit)."""
    fitting = [p for p in photos if p.file_size is None or p.file_size <= cap]
    if not fitting:
        smallest = min(p.file_size or 0 for p in photos)
        raise MediaError.too_large(smallest, cap)
    return max(fitting, key=lambda p: p.width * p.height)


class Inbound:
    def __init__(self, settings: BotSettings, media_store: MediaStore) -> None:
        self.settings = settings
        self.limits = MediaLimits.from_settings(settings)
        self.media_store = media_store
        # Own client for file downloads, so the size cap applies while bytes arrive.
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def turn(self, bot: Bot, message: Message, stickers_enabled: bool) -> UserTurn:
        """The UserTurn for a message; a MediaError carries a sentence for the person."""
        user = message.from_user
        assert user is not None  # the gate lets only messages from people through
        text = message.text or message.caption or ""
        if message.chat.type != "private" and bot.username:
            text = without_mention(text, bot.username)
        if len(text) > self.settings.max_text_chars:
            raise MediaError("too_long", f"Your message is too long: the limit is "
                                         f"{self.settings.max_text_chars} characters.")
        media = await self.media(bot, message)
        if not text.strip() and not media:
            raise MediaError("empty", "I can read text, stickers and pictures: send me one of "
                                      "those and I'll answer.")
        return UserTurn(platform=PLATFORM, chat_id=str(message.chat_id), user_id=str(user.id),
                        message_id=str(message.message_id), text=text, media=media,
                        user_name=user.first_name, sent_at=message.date,
                        stickers_enabled=stickers_enabled, language=user.language_code)

    async def media(self, bot: Bot, message: Message) -> list[Media]:
        cap = self.limits.max_bytes
        if message.sticker is not None:
            sticker = message.sticker
            hint = "tgs" if sticker.is_animated else "webm" if sticker.is_video else "webp"
            data = await self.download(bot, sticker.file_id, sticker.file_size)
            return [await self._store(data, hint, MediaKind.sticker, emoji=sticker.emoji,
                                      set_name=sticker.set_name)]
        if message.photo:
            photo = largest_photo_under(message.photo, cap)
            data = await self.download(bot, photo.file_id, photo.file_size)
            return [await self._store(data, "jpeg", MediaKind.image, caption=message.caption)]
        if message.document is not None:
            doc = message.document
            hint = normalise_hint(doc.file_name) or normalise_hint(doc.mime_type)
            if hint not in SUPPORTED_FORMATS:
                hint = normalise_hint(doc.mime_type)
            if hint not in SUPPORTED_FORMATS:
                # Decided from the name and type alone: no reason to fetch a PDF.
                raise MediaError("unsupported", f"I can't open that kind of file: "
                                                f"{SEND_INSTEAD}.")
            data = await self.download(bot, doc.file_id, doc.file_size)
            return [await self._store(data, doc.file_name or hint, MediaKind.image,
                                      caption=message.caption)]
        return []

    async def download(self, bot: Bot, file_id: str, declared: int | None) -> bytes:
        cap = self.limits.max_bytes
        if declared is not None and declared > cap:
            raise MediaError.too_large(declared, cap)
        try:
            tg_file = await bot.get_file(file_id)
        except TelegramError as error:
            log.warning("getFile failed: %s", error)
            raise fetch_failed() from None
        if tg_file.file_size is not None and tg_file.file_size > cap:
            raise MediaError.too_large(tg_file.file_size, cap)
        if not tg_file.file_path:
            raise fetch_failed()
        return await self._fetch(tg_file.file_path, cap)

    async def _fetch(self, url: str, cap: int) -> bytes:
        """GET with the cap enforced while reading. The URL holds the token: never log it."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    log.warning("file download failed with HTTP %s", response.status_code)
                    raise fetch_failed()
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise MediaError.too_large(size, cap)
                    chunks.append(chunk)
        except httpx.HTTPError as error:
            log.warning("file download failed: %s", type(error).__name__)
            raise fetch_failed() from None
        return b"".join(chunks)

    async def _store(self, data: bytes, hint: str, kind: MediaKind, *, emoji: str | None = None,
                     set_name: str | None = None, caption: str | None = None) -> Media:
        decoded = await asyncio.to_thread(decode_bytes, data, self.limits, hint)
        path = await asyncio.to_thread(self.media_store.save, data, decoded.format)
        return Media(kind=kind, path=str(path), format=decoded.format, emoji=emoji,
                     set_name=set_name, caption=caption)
