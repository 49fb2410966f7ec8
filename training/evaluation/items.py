"""What every metric scores: one system reply to one dialogue context.

Test-split predictions and logged transcripts are both turned into `EvalItem`s, so
the text, multimodal, judge and human-evaluation code never cares where a reply came
from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Turn:
    """One earlier turn of the dialogue: "user" or "assistant", text, sticker description."""

    role: str
    text: str
    sticker: str | None = None


@dataclass
class EvalItem:
    """A reply (`text` + optional sticker) of `system` to `context`, maybe with a reference.

    `sticker_id` names a library sticker; `sticker_path` an image file (generated
    stickers); `sticker_description` is what the judge reads, since it sees no images.
    """

    item_id: str
    system: str
    context: list[Turn]
    text: str
    sticker_id: str | None = None
    sticker_path: str | None = None
    sticker_description: str | None = None
    reference_text: str | None = None
    reference_sticker_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_sticker(self) -> bool:
        return bool(self.sticker_id or self.sticker_path)
