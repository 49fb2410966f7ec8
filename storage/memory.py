"""Conversation memory: the last turns of one person's conversation in one chat.

`ConversationMemory` is the seam: `SqlMemory` reads the transcript tables (the embedded
default); `storage.redis_memory.RedisMemory` caches the recent turns in front of it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select

from engine.types import Emotion, HistoryTurn, Reply, UserTurn
from storage.db import Database
from storage.models import Message, Sticker
from storage.queries import conversation_of, reset, since_reset


@runtime_checkable
class ConversationMemory(Protocol):
    def recent(self, platform: str, chat_id: str, user_id: str, n: int) -> list[HistoryTurn]:
        """The last n turns (user and bot rows), oldest first, since the last reset."""
        ...

    def clear(self, platform: str, chat_id: str, user_id: str) -> None:
        """Forget the conversation so far (for /reset)."""
        ...


class MemoryCache(Protocol):
    """A cache of recent turns that /reset and /forget must drop too (RedisMemory).

    TranscriptStore calls it from the bots' processes, not only from the worker's.
    """

    def clear_cache(self, platform: str, chat_id: str, user_id: str) -> None: ...

    def forget_user(self, platform: str, user_id: str) -> None: ...


def describe_media(media: list[dict[str, Any]] | None) -> str | None:
    """A short text for the stickers/images a person sent, from their metadata."""
    parts: list[str] = []
    for m in media or []:
        bits = [b for b in (m.get("emoji"), m.get("set_name"), m.get("caption")) if b]
        if bits:
            parts.append(" ".join(str(b) for b in bits))
        else:
            parts.append("a sticker" if m.get("kind") == "sticker" else "an image")
    return "; ".join(parts) or None


def library_sticker(turn: UserTurn) -> str | None:
    """The library id stored on the user's row: that of the first library sticker sent."""
    for m in turn.media:
        if m.library_id:
            return m.library_id
    return None


def history_of(turn: UserTurn, reply: Reply) -> list[HistoryTurn]:
    """The (user, bot) turns that `SqlMemory.recent` reads back after `record_exchange`.

    One exception: a sticker chosen with an empty description reads back from SQL with
    its library row's text instead; here it has none (no database at hand).
    """
    # The same JSON the transcript stores, so describe_media sees the same dicts.
    media = [m.model_dump(mode="json") for m in turn.media]
    user = HistoryTurn(role="user", text=turn.text, sticker_id=library_sticker(turn),
                       sticker_description=describe_media(media), emotion=reply.user_emotion)
    sticker = reply.sticker
    bot = HistoryTurn(role="bot", text=reply.text, sticker_id=sticker.id if sticker else None,
                      sticker_description=(sticker.description or None) if sticker else None)
    return [user, bot]


class SqlMemory:
    """Memory read straight from the messages table; survives restarts, needs no Redis."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def recent(self, platform: str, chat_id: str, user_id: str, n: int) -> list[HistoryTurn]:
        if n <= 0:
            return []
        with self.db.session() as s:
            conv = conversation_of(s, platform, chat_id, user_id)
            if conv is None:
                return []
            stmt = since_reset(
                select(Message, Sticker).outerjoin(Sticker, Sticker.id == Message.sticker_id),
                conv,
            ).order_by(Message.created_at.desc(), Message.id.desc()).limit(n)
            rows = [(msg, lib) for msg, lib in s.execute(stmt)]
        rows.reverse()
        return [_history(msg, lib) for msg, lib in rows]

    def clear(self, platform: str, chat_id: str, user_id: str) -> None:
        with self.db.session() as s:
            reset(s, platform, chat_id, user_id)


def stored_emotion(value: str | None) -> Emotion | None:
    """A message's stored emotion (None for rows written before it was kept)."""
    try:
        return Emotion(value) if value else None
    except ValueError:
        return None


def _history(msg: Message, lib: Sticker | None) -> HistoryTurn:
    if msg.role == "user":
        return HistoryTurn(role="user", text=msg.text, sticker_id=msg.sticker_id,
                           sticker_description=describe_media(msg.media),
                           emotion=stored_emotion(msg.user_emotion))
    description = None
    if msg.sticker_id is not None:
        meta = msg.sticker_meta or {}
        description = meta.get("description") or (
            (lib.content_description or lib.emotion_description or lib.emoji)
            if lib else None)
    return HistoryTurn(role="bot", text=msg.text, sticker_id=msg.sticker_id,
                       sticker_description=description)
