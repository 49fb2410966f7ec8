"""Transcripts: every user message and bot reply, idempotent under redelivery.

The worker calls `find_reply` before answering (a redelivered update gets the stored
answer back) and `record_exchange` after; the unique (conversation, role,
platform_message_id) key makes the second of two racing writers a quiet no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.types import Emotion, Perception, Reply, StickerChoice, UserTurn
from storage.db import Database
from storage.memory import MemoryCache, library_sticker
from storage.models import Conversation, Delivery, Message, ReviewMark, Sticker, User, utcnow
from storage.queries import (
    conversation_of,
    ensure_conversation,
    ensure_user,
    insert_ignore,
    reset,
    since_reset,
    user_id_of,
)

log = logging.getLogger(__name__)

STICKER_COLUMNS = ("pack", "emoji", "name", "emotion", "emotion_description",
                   "content_description", "recommendation", "license", "png_path", "webp_path")
_STICKER_DEFAULTS: dict[str, Any] = {"emoji": None, "webp_path": None, "name": "",
                                     "emotion_description": "", "content_description": "",
                                     "recommendation": "", "license": "", "png_path": ""}


class TranscriptStore:
    def __init__(self, db: Database, memory_cache: MemoryCache | None = None) -> None:
        self.db = db
        # Dropped on /reset and /forget so a cache cannot outlive what SQL forgot.
        self.memory_cache = memory_cache

    # --- the exchange itself -------------------------------------------------
    def find_reply(self, turn: UserTurn) -> Reply | None:
        """The bot reply already stored for this exact platform message, if any."""
        with self.db.session() as s:
            conv = conversation_of(s, turn.platform, turn.chat_id, turn.user_id)
            if conv is None:
                return None
            row = s.execute(
                select(Message, Sticker).outerjoin(Sticker, Sticker.id == Message.sticker_id)
                .where(Message.conversation_id == conv.id, Message.role == "bot",
                       Message.platform_message_id == turn.message_id)
            ).first()
            if row is None:
                return None
            msg, lib = row
            return Reply(
                text=msg.text,
                sticker=_sticker_choice(msg, lib),
                user_emotion=Emotion(msg.user_emotion or Emotion.neutral),
                user_valence=msg.user_valence or 0.0,
                planned_emotion=Emotion(msg.planned_emotion or Emotion.neutral),
                cause_words=list(msg.cause_words or []),
                latency_ms=msg.latency_ms or 0,
                model_version=msg.model_version or "",
                safety=msg.safety,
            )

    def record_exchange(self, turn: UserTurn, perception: Perception | None,
                        reply: Reply) -> bool:
        """Store the user message and the bot reply together, or neither.

        A second call for the same platform message (redelivery, or a racing worker)
        changes nothing and raises nothing. Returns whether this call stored them, so a
        racing worker does not append the same turns to a memory cache twice.
        """
        with self.db.session() as s:
            user_id = ensure_user(s, turn.platform, turn.user_id, turn.user_name)
            conv_id = ensure_conversation(s, turn.platform, turn.chat_id, user_id)
            now = utcnow()
            user_row = {
                "conversation_id": conv_id, "role": "user",
                "platform_message_id": turn.message_id, "reply_to": None,
                "text": turn.text, "sticker_id": library_sticker(turn),
                "sticker_meta": None,
                "media": [m.model_dump(mode="json") for m in turn.media] or None,
                "user_emotion": str(perception.emotion if perception else reply.user_emotion),
                "user_valence": perception.valence if perception else reply.user_valence,
                "planned_emotion": None,
                "cause_words": list(perception.cause_words if perception
                                    else reply.cause_words),
                "latency_ms": None, "model_version": None, "created_at": now,
                # engine.safety's crisis label of this message, for the dashboard.
                "safety": reply.safety,
            }
            key = ["conversation_id", "role", "platform_message_id"]
            user_msg_id = insert_ignore(s, Message.__table__, user_row, key)  # type: ignore[arg-type]
            if user_msg_id is None:
                log.info("exchange %s already recorded; not storing it again", turn.task_id)
                return False
            sticker = reply.sticker
            bot_row = {
                "conversation_id": conv_id, "role": "bot",
                "platform_message_id": turn.message_id, "reply_to": user_msg_id,
                "text": reply.text, "sticker_id": sticker.id if sticker else None,
                "sticker_meta": sticker.model_dump(mode="json") if sticker else None,
                "media": None,
                "user_emotion": str(reply.user_emotion), "user_valence": reply.user_valence,
                "planned_emotion": str(reply.planned_emotion),
                "cause_words": list(reply.cause_words), "latency_ms": reply.latency_ms,
                "model_version": reply.model_version, "created_at": now,
                "safety": reply.safety,
            }
            bot_msg_id = s.execute(Message.__table__.insert().values(**bot_row)
                                   .returning(Message.__table__.c.id)).scalar_one()
            if reply.safety_note:
                # An automatic flag on the bot reply: operators see it in the dashboard.
                s.add(ReviewMark(message_id=bot_msg_id, operator_id=None, kind="flag",
                                 source="safety", note=reply.safety_note[:500],
                                 created_at=now))
        return True

    # --- per-user settings ---------------------------------------------------
    def stickers_enabled(self, platform: str, user_id: str) -> bool:
        """Whether this person wants stickers (default: yes)."""
        with self.db.session() as s:
            value = s.execute(
                select(User.stickers_enabled).where(User.platform == platform,
                                                    User.platform_user_id == user_id)
            ).scalar_one_or_none()
            return True if value is None else bool(value)

    def set_stickers_enabled(self, platform: str, user_id: str, on: bool) -> None:
        with self.db.session() as s:
            uid = ensure_user(s, platform, user_id)
            user = s.get(User, uid)
            assert user is not None
            user.stickers_enabled = on

    def reset_conversation(self, platform: str, chat_id: str, user_id: str) -> None:
        """/reset: memory starts afresh; the transcript is kept for review."""
        with self.db.session() as s:
            reset(s, platform, chat_id, user_id)
        # After the commit, so a rebuild that follows the delete already sees the reset.
        if self.memory_cache is not None:
            self.memory_cache.clear_cache(platform, chat_id, user_id)

    def forget_user(self, platform: str, user_id: str) -> list[str]:
        """/forget: delete the person's messages, conversations and user row.

        Returns the media files only they referenced; the media store is
        content-addressed, so a file someone else also sent stays.
        """
        paths = self._forget_rows(platform, user_id)
        # After the commit, and even with no rows left: the cache may still hold turns.
        if self.memory_cache is not None:
            self.memory_cache.forget_user(platform, user_id)
        return paths

    def _forget_rows(self, platform: str, user_id: str) -> list[str]:
        with self.db.session() as s:
            uid = user_id_of(s, platform, user_id)
            if uid is None:
                return []
            conv_ids = list(s.execute(
                select(Conversation.id).where(Conversation.user_id == uid)).scalars())
            paths: set[str] = set()
            if conv_ids:
                for media in s.execute(select(Message.media).where(
                        Message.conversation_id.in_(conv_ids), Message.media.is_not(None))
                        ).scalars():
                    paths.update(media_paths(media))
            # A message still waiting for its answer keeps its media only in its delivery.
            for turn in s.execute(select(Delivery.turn).where(
                    Delivery.user_id == uid, Delivery.turn.is_not(None))).scalars():
                paths.update(media_paths(turn.get("media")))
            if paths:
                # Keep files still referenced by anybody else's messages.
                others = (select(Message.media)
                          .where(Message.media.is_not(None), Message.role == "user")
                          .execution_options(yield_per=500))
                if conv_ids:
                    others = others.where(Message.conversation_id.not_in(conv_ids))
                for media in s.execute(others).scalars():
                    paths.difference_update(media_paths(media))
                    if not paths:
                        break
            if conv_ids:
                # Bot rows first: they point at the user rows through reply_to.
                s.execute(delete(Message).where(Message.conversation_id.in_(conv_ids),
                                                Message.role == "bot"))
                s.execute(delete(Message).where(Message.conversation_id.in_(conv_ids)))
                s.execute(delete(Conversation).where(Conversation.id.in_(conv_ids)))
            s.execute(delete(User).where(User.id == uid))
            return sorted(paths)

    # --- sticker library -----------------------------------------------------
    def upsert_stickers(self, stickers: Iterable[Mapping[str, Any]]) -> int:
        """Insert or update library sticker metadata by id; returns rows written."""
        rows = [_sticker_row(m) for m in stickers]
        if not rows:
            return 0
        with self.db.session() as s:
            dialect = s.get_bind().dialect.name
            if dialect in ("postgresql", "sqlite"):
                insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
                for start in range(0, len(rows), 500):
                    stmt = insert(Sticker.__table__)
                    stmt = stmt.on_conflict_do_update(
                        index_elements=["id"],
                        set_={c: stmt.excluded[c] for c in STICKER_COLUMNS})
                    s.execute(stmt, rows[start:start + 500])
            else:
                for row in rows:
                    s.merge(Sticker(**row))
        return len(rows)

    # --- sticker frequency control -------------------------------------------
    def recent_bot_sticker_ids(self, platform: str, chat_id: str, user_id: str,
                               n: int) -> list[str]:
        """Sticker ids of the last n bot replies that had one, newest first.

        Deliberately ignores /reset: the person has still seen those stickers.
        """
        if n <= 0:
            return []
        with self.db.session() as s:
            conv = conversation_of(s, platform, chat_id, user_id)
            if conv is None:
                return []
            return list(s.execute(
                select(Message.sticker_id)
                .where(Message.conversation_id == conv.id, Message.role == "bot",
                       Message.sticker_id.is_not(None))
                .order_by(Message.created_at.desc(), Message.id.desc()).limit(n)
            ).scalars())

    def bot_sticker_stats(self, platform: str, chat_id: str, user_id: str) -> tuple[int, int]:
        """(bot turns, bot turns with a sticker) since the last /reset."""
        with self.db.session() as s:
            conv = conversation_of(s, platform, chat_id, user_id)
            if conv is None:
                return (0, 0)
            stmt = since_reset(
                select(func.count(Message.id), func.count(Message.sticker_id))
                .where(Message.role == "bot"), conv)
            total, with_sticker = s.execute(stmt).one()
            return int(total), int(with_sticker)

    def bot_safety_labels(self, platform: str, chat_id: str, user_id: str,
                          limit: int) -> list[str | None]:
        """The `safety` labels of the bot's last `limit` turns since the last /reset,
        newest first (engine.safety.check_in reads its state from them)."""
        with self.db.session() as s:
            conv = conversation_of(s, platform, chat_id, user_id)
            if conv is None:
                return []
            stmt = since_reset(select(Message.safety).where(Message.role == "bot"), conv)
            return list(s.execute(stmt.order_by(Message.id.desc()).limit(limit)).scalars())


    # --- reachability --------------------------------------------------------
    def set_user_active(self, platform: str, user_id: str, active: bool) -> None:
        """Mark whether the platform still lets us message this person.

        A Telegram 403 (they blocked the bot) sets False; their next message sets True.
        """
        with self.db.session() as s:
            uid = ensure_user(s, platform, user_id)
            user = s.get(User, uid)
            assert user is not None
            user.active = active

    def user_active(self, platform: str, user_id: str) -> bool:
        """Whether we may message this person (default: yes)."""
        with self.db.session() as s:
            value = s.execute(
                select(User.active).where(User.platform == platform,
                                          User.platform_user_id == user_id)
            ).scalar_one_or_none()
            return True if value is None else bool(value)

def media_paths(media: Any) -> set[str]:
    """The media-store paths a message's (or a pending turn's) `media` list points at."""
    if not isinstance(media, list):
        return set()
    return {m["path"] for m in media if isinstance(m, dict) and m.get("path")}


def _sticker_choice(msg: Message, lib: Sticker | None) -> StickerChoice | None:
    if msg.sticker_id is None:
        return None
    if msg.sticker_meta:
        return StickerChoice.model_validate(msg.sticker_meta)
    # Rows written without the full choice (imports): rebuild it from the library.
    return StickerChoice(
        id=msg.sticker_id,
        emotion=Emotion(lib.emotion) if lib else Emotion.neutral,
        description=(lib.content_description or lib.emotion_description) if lib else "",
        image_path=lib.png_path if lib else "",
    )


def _sticker_row(meta: Mapping[str, Any]) -> dict[str, Any]:
    if not meta.get("id"):
        raise ValueError(f"sticker metadata without an id: {dict(meta)!r}")
    row: dict[str, Any] = {"id": str(meta["id"])}
    for column in STICKER_COLUMNS:
        value = meta.get(column, _STICKER_DEFAULTS.get(column))
        if value is None and column not in ("emoji", "webp_path"):
            if column in ("pack", "emotion"):
                raise ValueError(f"sticker {row['id']!r} needs {column!r}")
            value = ""
        row[column] = str(value) if value is not None else None
    Emotion(row["emotion"])  # ValueError on a label outside the 7 classes
    return row
