"""STICKERCONV session records, exactly as published, plus documented extra top-level keys.

Published keys: {"conversation": [{"turn", "user_message", "system_message",
"user_sticker", "system_sticker"}], "user_persona", "user_status"}, each sticker null or
{"image", "description", "emotion", "recommendation", "origin_anno"}.

How the library maps onto a sticker object: "image" is the sticker's PNG path relative
to the library directory (`<pack>/<sticker id>.png`, so `sticker_id_of` gets the id
back), "description" its content description, "emotion" its SER30K label,
"recommendation" its usage recommendation, "origin_anno" its emotion description.

Extra top-level keys the simulator adds (readers of the published format ignore them):
"session_id", "seed", "shard", "split", "user_emotion", "close_reason", "model",
"counters" (the manager's and the planners' tallies: retries, fallbacks, drops) and
"sticker_plans" (per sticker sent: turn, role, intention, query, top-K ids, reason).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.stickers import Sticker
from training.simulator.agents import Session

PUBLISHED_KEYS = ("conversation", "user_persona", "user_status")
TURN_KEYS = ("turn", "user_message", "system_message", "user_sticker", "system_sticker")


class StickerObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str
    description: str
    emotion: str
    recommendation: str
    origin_anno: str


class TurnRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turn: int
    user_message: str
    system_message: str
    user_sticker: StickerObject | None
    system_sticker: StickerObject | None


class SessionRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    conversation: list[TurnRecord]
    user_persona: str
    user_status: str


def sticker_object(sticker: Sticker) -> dict[str, str]:
    return {"image": sticker.png_path or f"{sticker.pack}/{sticker.id}.png",
            "description": sticker.content_description, "emotion": sticker.emotion.value,
            "recommendation": sticker.recommendation,
            "origin_anno": sticker.emotion_description}


def sticker_id_of(image: str) -> str:
    """The library id inside a sticker object's "image" path."""
    return PurePosixPath(image).stem


def session_record(session: Session, model: str, plans: list[dict[str, Any]]) -> dict[str, Any]:
    """The finished session as one STICKERCONV record (user speaks first in every turn)."""
    turns = []
    pairs = [session.utterances[i:i + 2] for i in range(0, len(session.utterances), 2)]
    for number, (user, system) in enumerate(pairs, start=1):
        turns.append({
            "turn": number, "user_message": user.text, "system_message": system.text,
            "user_sticker": sticker_object(user.sticker) if user.sticker else None,
            "system_sticker": sticker_object(system.sticker) if system.sticker else None,
        })
    return {
        "conversation": turns,
        "user_persona": session.profile.persona,
        "user_status": session.profile.situation,
        "session_id": session.session_id, "seed": session.seed, "shard": session.shard,
        "split": session.split, "user_emotion": session.profile.emotion.value,
        "close_reason": session.close_reason, "model": model,
        "counters": dict(sorted(session.counters.items())), "sticker_plans": plans,
    }


def validate_record(data: dict[str, Any]) -> SessionRecord:
    """Raises pydantic.ValidationError unless `data` is a valid STICKERCONV record."""
    return SessionRecord.model_validate(data)
