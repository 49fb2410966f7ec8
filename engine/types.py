"""Platform-neutral types that every adapter, the queue and the responder share.

They are pydantic models so that a turn can cross the queue as JSON and come back
unchanged.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

# C0/C1 control characters other than tab and newline: NUL cannot be stored in
# PostgreSQL text, and escapes (ANSI colours) would reach logs and terminals.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Lone UTF-16 surrogates (JSON's "\ud800" decodes to one): not text, so no encoder,
# tokenizer or database takes them. Each becomes U+FFFD, as undecodable bytes do.
_SURROGATES = re.compile("[\ud800-\udfff]")


def without_control_chars(text: str) -> str:
    """Text any platform sent, made safe to store, log and tokenize."""
    return _SURROGATES.sub("\ufffd", _CONTROL_CHARS.sub("", text))


class Emotion(StrEnum):
    """The 7 SER30K emotion classes used by STICKERCONV."""

    anger = "anger"
    disgust = "disgust"
    fear = "fear"
    happiness = "happiness"
    neutral = "neutral"
    sadness = "sadness"
    surprise = "surprise"


NEGATIVE_EMOTIONS = frozenset({Emotion.anger, Emotion.disgust, Emotion.fear, Emotion.sadness})


class MediaKind(StrEnum):
    sticker = "sticker"
    image = "image"


class Media(BaseModel):
    """One picture a person sent: a sticker or an image, already stored on disk."""

    kind: MediaKind
    path: str = Field(description="Local path of the stored original file.")
    format: str = Field(description="png, webp, jpeg, gif, tgs, webm or lottie")
    emoji: str | None = Field(default=None, description="The platform's emoji for a sticker.")
    set_name: str | None = Field(default=None, description="Sticker set or sticker name.")
    library_id: str | None = Field(default=None, description="Set when it is a library sticker.")
    caption: str | None = None

    @field_validator("caption", "set_name", "emoji")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return without_control_chars(value) if value is not None else None


class UserTurn(BaseModel):
    """What one person sent in one message, whatever the platform."""

    platform: str
    chat_id: str
    user_id: str
    message_id: str
    text: str = ""
    media: list[Media] = Field(default_factory=list)
    user_name: str | None = None
    sent_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    stickers_enabled: bool = True
    # The person's language as the platform reports it ("de", "pt-BR"), for safety replies.
    language: str | None = None

    @field_validator("text")
    @classmethod
    def _printable_text(cls, value: str) -> str:
        return without_control_chars(value)

    @field_validator("user_name")
    @classmethod
    def _printable_name(cls, value: str | None) -> str | None:
        return without_control_chars(value) if value is not None else None

    @property
    def task_id(self) -> str:
        """Idempotency key: a redelivered message maps to the same task."""
        return f"{self.platform}:{self.chat_id}:{self.message_id}"

    @property
    def has_sticker(self) -> bool:
        return any(m.kind == MediaKind.sticker for m in self.media)


class Perception(BaseModel):
    """What the bot understood of a turn: the user's emotion and why."""

    emotion: Emotion
    valence: float = Field(ge=-1.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    cause_words: list[str] = Field(default_factory=list)
    media_descriptions: list[str] = Field(default_factory=list)


class StickerChoice(BaseModel):
    """The sticker chosen for a reply."""

    id: str
    emotion: Emotion
    description: str
    image_path: str
    mode: str = "ret"  # ret | gen | rag
    score: float = 0.0
    # Generated stickers: what drew it ("diffusion" | "composer") and the composer's caption,
    # for engine.safety's checks before it is sent.
    generator: str | None = None
    caption: str | None = None


class HistoryTurn(BaseModel):
    """One earlier turn of the conversation as memory gives it back."""

    role: str  # "user" | "bot"
    text: str
    sticker_id: str | None = None
    sticker_description: str | None = None
    # What the person seemed to feel in this turn, as perceived when it came (user turns).
    emotion: Emotion | None = None


class Reply(BaseModel):
    """The bot's answer to one UserTurn."""

    text: str
    sticker: StickerChoice | None = None
    user_emotion: Emotion
    user_valence: float
    planned_emotion: Emotion
    cause_words: list[str] = Field(default_factory=list)
    latency_ms: int = 0
    model_version: str = ""
    # engine.safety: the crisis label of the turn ("self_harm", "harm_others"), and a note
    # for operators (a crisis, a refused sticker, a filtered reply); stored with the turn.
    safety: str | None = None
    safety_note: str | None = None
