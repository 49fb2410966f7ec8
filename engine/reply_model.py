"""The seam between the responder and the model that writes a reply.

A `ReplyModel` turns planned requests into text plus an optional sticker. Today's
implementation writes text with the LLM, then retrieves a sticker from the library
by the planned emotion and the reply's words; PEGS (engine/pegs/reply.py) is the
other `ReplyModel`: it decides on its own `[IMG]` tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from engine.planning import ReplyPlan
from engine.prompting import clean_reply
from engine.types import StickerChoice

if TYPE_CHECKING:
    from PIL import Image

    from engine.llm import ChatLLM
    from engine.stickers import Sticker, StickerIndex, StickerLibrary

log = logging.getLogger(__name__)

# A sticker of the plan's first-choice emotion wins over a slightly closer one of a
# fallback emotion.
PREFERRED_EMOTION_BONUS = 0.05


@dataclass
class ReplyRequest:
    messages: list[dict[str, str]]
    plan: ReplyPlan
    want_sticker: bool  # the frequency control allows a sticker on this turn
    exclude_sticker_ids: frozenset[str] = field(default_factory=frozenset)
    # For models that decide on their own (PEGS): send the allowed sticker for sure.
    force_sticker: bool = False
    # The pictures of the new turn, in order, for models that look at images (PEGS).
    images: list[Image.Image] = field(default_factory=list)


@dataclass
class ModelReply:
    text: str
    sticker: StickerChoice | None
    new_tokens: int = 0


def library_choice(library: StickerLibrary, sticker: Sticker, score: float) -> StickerChoice:
    """A retrieved library sticker as the reply carries it."""
    return StickerChoice(id=sticker.id, emotion=sticker.emotion,
                         description=sticker.content_description,
                         image_path=str(library.png_file(sticker.id)), mode="ret",
                         score=float(score))


class ReplyModel(Protocol):
    version: str

    def reply(self, requests: list[ReplyRequest]) -> list[ModelReply]: ...


class RetrievalReplyModel:
    """LLM text, then a library sticker chosen by planned emotion and reply text."""

    def __init__(self, llm: ChatLLM, library: StickerLibrary, index: StickerIndex) -> None:
        self.llm = llm
        self.library = library
        self.index = index
        self.version = f"{llm.version}+ret"

    def reply(self, requests: list[ReplyRequest]) -> list[ModelReply]:
        generations = self.llm.generate([r.messages for r in requests])
        replies = []
        for request, generation in zip(requests, generations, strict=True):
            text = clean_reply(generation.text)
            sticker = self.pick_sticker(request, text) if request.want_sticker else None
            replies.append(ModelReply(text, sticker, generation.new_tokens))
        return replies

    def pick_sticker(self, request: ReplyRequest, text: str) -> StickerChoice | None:
        query = f"{request.plan.sticker_query}. {text}"
        best: tuple[float, StickerChoice] | None = None
        for rank, emotion in enumerate(request.plan.sticker_emotions):
            hits = self.index.search(
                query, emotion=emotion, k=1, exclude=request.exclude_sticker_ids
            )
            if not hits:
                continue
            sticker, score = hits[0]
            ranked = score + (PREFERRED_EMOTION_BONUS if rank == 0 else 0.0)
            if best is None or ranked > best[0]:
                best = (ranked, library_choice(self.library, sticker, score))
        if best is None:
            log.info("no sticker left to send for emotions %s", request.plan.sticker_emotions)
        return best[1] if best else None
