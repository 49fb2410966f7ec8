"""SQL tables: users, their conversations, the messages of each, and the sticker library.

Migrations in storage/migrations must match these classes; tests/storage/test_migrations.py
compares them with Alembic's autogenerate so drift fails loudly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints make later migrations (and SQLite batch mode) deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zones: values are stored as naive UTC and come back tagged UTC, so
    comparisons (e.g. with reset_at) behave as on PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    platform_user_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    stickers_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(Base):
    """Memory is per user per chat: a group chat holds one conversation per member."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by /reset: memory ignores earlier messages, review still sees them.
    reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Message(Base):
    """One user message or one bot reply.

    A bot row carries the platform_message_id of the user message it answers, so the
    unique (conversation_id, role, platform_message_id) stops a redelivered update from
    being stored (or answered) twice.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "role", "platform_message_id"),
        CheckConstraint("role IN ('user', 'bot')", name="role"),
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(8))
    platform_message_id: Mapped[str] = mapped_column(String(128))
    reply_to: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    sticker_id: Mapped[str | None] = mapped_column(String(128))
    # The full StickerChoice of a bot reply (generated stickers have no library row).
    sticker_meta: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    media: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    user_emotion: Mapped[str | None] = mapped_column(String(16))
    user_valence: Mapped[float | None] = mapped_column(Float)
    planned_emotion: Mapped[str | None] = mapped_column(String(16))
    cause_words: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    # engine.safety's label of a user message ("self_harm", "harm_others") or of the
    # bot reply that answered it as a crisis; None when nothing was recognised.
    safety: Mapped[str | None] = mapped_column(String(32), index=True)
    model_version: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Sticker(Base):
    """Library sticker metadata (the STICKERCONV fields); files live on disk."""

    __tablename__ = "stickers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    pack: Mapped[str] = mapped_column(String(128), index=True)
    emoji: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(256), default="")
    emotion: Mapped[str] = mapped_column(String(16), index=True)
    emotion_description: Mapped[str] = mapped_column(Text, default="")
    content_description: Mapped[str] = mapped_column(Text, default="")
    recommendation: Mapped[str] = mapped_column(Text, default="")
    license: Mapped[str] = mapped_column(String(128), default="")
    png_path: Mapped[str] = mapped_column(Text, default="")
    webp_path: Mapped[str | None] = mapped_column(Text)


class PlatformSticker(Base):
    """A platform's own handle for a library sticker we uploaded once (Telegram file_id).

    Sending the handle instead of the file saves an upload per reply and survives restarts.
    """

    __tablename__ = "platform_stickers"
    __table_args__ = (UniqueConstraint("platform", "sticker_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    sticker_id: Mapped[str] = mapped_column(String(128))
    file_id: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    """One incoming platform message and the sending of the bot's answer to it.

    The unique task_id ("<platform>:<chat>:<message>") claims a message once, so a
    redelivered update is never answered twice; `parts_sent` counts the parts (text
    chunks, then the sticker) already sent, so a resend continues where sending stopped.
    States: received -> pending (answer known) -> sent | abandoned | failed.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("task_id"),
        CheckConstraint("state IN ('received', 'pending', 'sent', 'abandoned', 'failed')",
                        name="state"),
        Index("ix_deliveries_state_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(300))
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    # Deleted with the person (/forget): the row holds their message.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    turn: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(256))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnabledChannel(Base):
    """A server channel where an admin asked the bot to answer every message
    (Discord `/channel enable`); elsewhere in servers it answers only when addressed."""

    __tablename__ = "enabled_channels"
    __table_args__ = (UniqueConstraint("platform", "channel_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(128))
    guild_id: Mapped[str | None] = mapped_column(String(128))
    enabled_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EvaluationScore(Base):
    """One number of one `stickerbot evaluate` run (training/evaluation), kept for the
    review dashboard: e.g. system "v3", metric "multimodal.f_mmr", value 0.61."""

    __tablename__ = "evaluation_scores"
    __table_args__ = (Index("ix_evaluation_scores_system_metric", "system", "metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(32))  # "split" | "transcripts"
    system: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    n: Mapped[int | None] = mapped_column(Integer)
    # Set for a per-reply score (the judge's mean on one logged bot message).
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Operator(Base):
    """A person who may log in to the review dashboard (`stickerbot review add-operator`)."""

    __tablename__ = "operators"
    __table_args__ = (UniqueConstraint("username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OperatorSession(Base):
    """A logged-in dashboard session. Only the SHA-256 of the cookie's token is stored,
    so a leaked database does not log anybody in; the CSRF token is per session."""

    __tablename__ = "operator_sessions"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReviewMark(Base):
    """A judgement on one message: an operator's flag (with a note) or good/bad mark, or
    an automatic flag raised by engine.safety (operator_id None, source "safety")."""

    __tablename__ = "review_marks"
    __table_args__ = (
        CheckConstraint("kind IN ('flag', 'good', 'bad')", name="kind"),
        Index("ix_review_marks_message_kind", "message_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    operator_id: Mapped[int | None] = mapped_column(
        ForeignKey("operators.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(16), default="operator")  # or "safety"
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Job(Base):
    """A long job (evaluation, simulation, training) on the cpu queue (tasks/jobs.py), or in
    the process that started it on the embedded profile: its state outlives the dashboard."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="state"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # also the Celery task id
    kind: Mapped[str] = mapped_column(String(16), index=True)  # evaluate | simulate | train
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(8), default="queued")
    progress: Mapped[str] = mapped_column(String(200), default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
