"""Turning a Discord message into a UserTurn: who, which channel, the text, and the media.

Attachments are checked against the size cap from `attachment.size` before anything is
downloaded, downloads enforce the cap while reading, and engine.media decodes every
file so a damaged or unknown one becomes a sentence for the person. Stickers
(`sticker_items`: PNG, APNG, GIF, Lottie JSON) are fetched from the CDN; their name
goes into Media.set_name.
"""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import discord

from bots.settings import BotSettings
from engine.media import SUPPORTED_FORMATS, MediaError, MediaLimits, decode_bytes
from engine.media.base import SEND_INSTEAD, normalise_hint
from engine.types import Media, MediaKind, UserTurn
from storage.media_store import MediaStore

log = logging.getLogger(__name__)

PLATFORM = "discord"
DEFAULT_CDN = "https://cdn.discordapp.com"
MAX_MEDIA = 4  # pictures read from one message
EMPTY = "I can read text, stickers and pictures: send me one of those and I'll answer."
STICKER_HINTS = {discord.StickerFormatType.png: "png", discord.StickerFormatType.apng: "png",
                 discord.StickerFormatType.gif: "gif", discord.StickerFormatType.lottie: "lottie"}


def fetch_failed() -> MediaError:
    return MediaError("fetch_failed", "I couldn't fetch that file from Discord just now. "
                                      "Please send it again in a moment.")


def task_id_of(message: discord.Message) -> str:
    return f"{PLATFORM}:{message.channel.id}:{message.id}"


def sticker_url(item: discord.StickerItem) -> str:
    """discord.py names GIF stickers on media.discordapp.net whatever the CDN setting;
    when the CDN is pointed elsewhere (a proxy, the tests' fake) take them from there."""
    if item.format is discord.StickerFormatType.gif and discord.asset.Asset.BASE != DEFAULT_CDN:
        return f"{discord.asset.Asset.BASE}/stickers/{item.id}.gif"
    return item.url


def without_mention(text: str, bot_id: int) -> str:
    """'<@900> how are you' -> 'how are you': the responder should not read the mention."""
    text = re.sub(rf"<@!?{bot_id}>[,:]?", " ", text)
    return re.sub(r"\s{2,}", " ", text).strip()


class Inbound:
    def __init__(self, settings: BotSettings, media_store: MediaStore) -> None:
        self.settings = settings
        self.limits = MediaLimits.from_settings(settings)
        self.media_store = media_store
        self._http: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def turn(self, message: discord.Message, bot_id: int,
                   stickers_enabled: bool) -> UserTurn:
        """The UserTurn for a message; a MediaError carries a sentence for the person."""
        text = without_mention(message.content or "", bot_id)
        if len(text) > self.settings.max_text_chars:
            raise MediaError("too_long", f"Your message is too long: the limit is "
                                         f"{self.settings.max_text_chars} characters.")
        media = await self.media(message)
        if not text and not media:
            raise MediaError("empty", EMPTY)
        author = message.author
        return UserTurn(platform=PLATFORM, chat_id=str(message.channel.id),
                        user_id=str(author.id), message_id=str(message.id), text=text,
                        media=media, user_name=author.display_name, sent_at=message.created_at,
                        stickers_enabled=stickers_enabled)

    async def media(self, message: discord.Message) -> list[Media]:
        found: list[Media] = []
        for item in message.stickers[:MAX_MEDIA]:
            hint = STICKER_HINTS.get(item.format)
            if hint is None:
                raise MediaError("unsupported", f"I can't open that kind of sticker: "
                                                f"{SEND_INSTEAD}.")
            data = await self.download(sticker_url(item), None)
            found.append(await self._store(data, hint, MediaKind.sticker, set_name=item.name))
        for attachment in message.attachments[:MAX_MEDIA - len(found)]:
            hint = normalise_hint(attachment.filename)
            if hint not in SUPPORTED_FORMATS:
                hint = normalise_hint(attachment.content_type)
            if hint not in SUPPORTED_FORMATS:
                # Decided from the name and type alone: no reason to fetch a PDF.
                raise MediaError("unsupported", f"I can't open that kind of file: "
                                                f"{SEND_INSTEAD}.")
            data = await self.download(attachment.url, attachment.size)
            found.append(await self._store(data, attachment.filename or hint, MediaKind.image))
        return found

    async def download(self, url: str, declared: int | None) -> bytes:
        """GET with the cap checked first from the declared size, then while reading."""
        cap = self.limits.max_bytes
        if declared is not None and declared > cap:
            raise MediaError.too_large(declared, cap)
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60,
                                                                             connect=10))
        chunks: list[bytes] = []
        size = 0
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    log.warning("file download failed with HTTP %s", response.status)
                    raise fetch_failed()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > cap:
                        raise MediaError.too_large(size, cap)
                    chunks.append(chunk)
        except (TimeoutError, aiohttp.ClientError) as error:
            log.warning("file download failed: %s", type(error).__name__)
            raise fetch_failed() from None
        return b"".join(chunks)

    async def _store(self, data: bytes, hint: str, kind: MediaKind, *,
                     set_name: str | None = None) -> Media:
        decoded = await asyncio.to_thread(decode_bytes, data, self.limits, hint)
        path = await asyncio.to_thread(self.media_store.save, data, decoded.format)
        return Media(kind=kind, path=str(path), format=decoded.format, set_name=set_name)
