"""The web chat's answer as JSON: the reply's text, what the bot read of the message, and
its sticker (a library one, or one PEGS generated) as the page shows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.safety.sticker_check import GENERATED_NAME
from engine.stickers import StickerLibrary
from engine.types import Reply


def sticker_json(library: StickerLibrary, sticker_id: str) -> dict[str, Any]:
    sticker = library.get(sticker_id)
    return {
        "id": sticker.id,
        "url": f"/stickers/{sticker.id}.png",
        "emotion": sticker.emotion.value,
        "emoji": sticker.emoji,
        "name": sticker.name,
        "description": sticker.content_description,
    }


def generated_json(reply: Reply) -> dict[str, Any] | None:
    """A generated sticker, when its file is one the generated route serves."""
    name = Path(reply.sticker.image_path).name
    if not GENERATED_NAME.fullmatch(name):
        return None
    return {"id": reply.sticker.id, "url": f"/generated/{name}",
            "emotion": reply.sticker.emotion.value, "emoji": None, "name": "",
            "description": reply.sticker.description, "mode": reply.sticker.mode}


def reply_json(library: StickerLibrary, reply: Reply, latency_ms: int) -> dict[str, Any]:
    sticker = None
    if reply.sticker is not None and reply.sticker.id in library:
        sticker = sticker_json(library, reply.sticker.id)
    elif reply.sticker is not None:
        sticker = generated_json(reply)
    return {
        "reply": {
            "text": reply.text,
            "sticker": sticker,
            "user_emotion": reply.user_emotion.value,
            "user_valence": round(reply.user_valence, 3),
            "planned_emotion": reply.planned_emotion.value,
            "latency_ms": latency_ms,
            # engine.safety's label: a crisis reply or a check-in question (else None).
            "safety": reply.safety,
        }
    }
