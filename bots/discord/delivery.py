"""Sending answers to Discord: text chunks of at most 2000 characters, the sticker as a
PNG attachment on the last one, exactly once each.

An answer is a payload stored in the ledger before the first send. Each message is
recorded as sent before the next goes, so a later resend continues where sending
stopped. discord.py itself waits out 429s and retries 5xx; what still fails (the
server or the network down) waits in the ledger for the resend loop. Every message
carries a nonce derived from its task and part (discord.py adds enforce_nonce), so Discord drops a
copy if a send that seemed to fail had in fact gone through.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from pathlib import Path
from typing import Any

import aiohttp
import discord
from PIL import Image

from bots.ledger import DeliveryPolicy, Ledger
from bots.render import split_text
from engine.media import encode_png
from engine.safety.sticker_check import looks_generated
from engine.stickers import StickerLibrary
from storage.transcript import TranscriptStore

log = logging.getLogger(__name__)

MAX_MESSAGE = 2000
TYPING_EVERY_S = 8.0  # Discord shows "typing..." for about 10 s
TRANSIENT = (discord.DiscordServerError, discord.RateLimited, aiohttp.ClientError,
             TimeoutError, OSError)


def payload_for_text(text: str, user_id: str, *, reply_to: str | None = None) -> dict[str, Any]:
    return {"texts": split_text(text, MAX_MESSAGE), "sticker_id": None, "sticker_path": None,
            "user_id": user_id, "reply_to": reply_to}


def nonce_for(task_id: str, part: int) -> str:
    """A stable nonce (Discord allows 25 characters) for one part of one answer."""
    return hashlib.sha256(f"{task_id}#{part}".encode()).hexdigest()[:25]


class Outbox:
    def __init__(self, client: discord.Client, ledger: Ledger, transcripts: TranscriptStore,
                 library: StickerLibrary, policy: DeliveryPolicy) -> None:
        self.client = client
        self.ledger = ledger
        self.transcripts = transcripts
        self.library = library
        self.policy = policy

    async def deliver(self, task_id: str) -> str:
        """Send what is left of a pending answer; returns the delivery's state after."""
        row = self.ledger.get(task_id)
        if row is None or row.state != "pending" or row.payload is None:
            return row.state if row else "gone"
        payload = row.payload
        texts: list[str] = payload.get("texts") or []
        has_sticker = bool(payload.get("sticker_id") or payload.get("sticker_path"))
        total = max(len(texts), 1 if has_sticker else 0)
        channel = self.client.get_partial_messageable(int(row.chat_id))
        for index in range(row.parts_sent, total):
            last = index == total - 1
            text = texts[index] if index < len(texts) else None
            sticker = await self._sticker_file(payload) if last and has_sticker else None
            try:
                await self._send(channel, task_id, index, text, sticker, payload)
            except discord.Forbidden as error:
                log.info("delivery %s: not allowed to write there (%s); marking inactive",
                         task_id, error.code)
                self.transcripts.set_user_active("discord", payload["user_id"], False)
                self.ledger.finish(task_id, "abandoned", f"403 {error.code}")
                return "abandoned"
            except discord.NotFound as error:
                log.info("delivery %s: channel gone (%s)", task_id, error.code)
                self.ledger.finish(task_id, "abandoned", f"404 {error.code}")
                return "abandoned"
            except TRANSIENT as error:
                attempts = self.ledger.postpone(task_id, type(error).__name__,
                                                self.policy.resend_delay(row.attempts))
                log.warning("delivery %s: part %d not sent (%s); will resend (attempt %d)",
                            task_id, index + 1, type(error).__name__, attempts)
                return "pending"
            except discord.HTTPException as error:
                log.warning("delivery %s: message refused (%s %s)", task_id, error.status,
                            error.code)
                self.ledger.finish(task_id, "abandoned", f"{error.status} {error.code}")
                return "abandoned"
            self.ledger.part_sent(task_id, index + 1)
        self.ledger.finish(task_id, "sent")
        return "sent"

    async def _send(self, channel: discord.PartialMessageable, task_id: str, index: int,
                    text: str | None, sticker: discord.File | None,
                    payload: dict[str, Any]) -> None:
        reply_to = payload.get("reply_to") if index == 0 else None
        reference = (discord.MessageReference(message_id=int(reply_to), channel_id=channel.id,
                                              fail_if_not_exists=False) if reply_to else None)
        extra: dict[str, Any] = {}
        if reference is not None:
            extra["reference"] = reference
            extra["mention_author"] = False
        try:
            await channel.send(content=text, file=sticker, nonce=nonce_for(task_id, index),
                               allowed_mentions=discord.AllowedMentions.none(), **extra)
        except discord.HTTPException as error:
            if sticker is None or not 400 <= error.status < 500 or error.status in (403, 404,
                                                                                   429):
                raise
            # A refused picture should not hold back a reply whose words are fine.
            log.warning("delivery %s: sticker refused (%s); sending the text alone", task_id,
                        error.status)
            if text:
                await channel.send(content=text, nonce=nonce_for(task_id, index + 100),
                                   allowed_mentions=discord.AllowedMentions.none(), **extra)

    async def _sticker_file(self, payload: dict[str, Any]) -> discord.File | None:
        sticker_id = payload.get("sticker_id")
        path: Path | None = None
        if sticker_id and sticker_id in self.library:
            path = self.library.png_file(sticker_id)
        elif payload.get("sticker_path") and looks_generated(payload["sticker_path"]):
            path = Path(payload["sticker_path"])  # a generated sticker; nothing else is sent
        if path is None or not path.is_file():
            log.warning("sticker %s has no file to send; sending the text only", sticker_id)
            return None
        data = await asyncio.to_thread(_png_of, path)
        return discord.File(io.BytesIO(data), filename=f"{sticker_id or 'sticker'}.png")


def _png_of(path: Path) -> bytes:
    if path.suffix.lower() == ".png":
        return path.read_bytes()
    with Image.open(path) as image:
        return encode_png(image.convert("RGBA"))

