"""The seam between the responder and the model that writes a reply.

A `ReplyModel` turns planned requests into text plus an optional sticker.
`RetrievalReplyModel` writes text with the LLM and takes a library sticker: the one the
LLM asked for with a sticker action (the corpus-tuned LLM, engine/tuned_llm.py, writes
`[sticker: <description>]` where its training dialogues had a sticker), else one found
by the planned emotion and the reply's words. PEGS (engine/pegs/reply.py) is the other
`ReplyModel`: it decides on its own `[IMG]` tokens.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from engine.planning import ReplyPlan
from engine.prompting import clean_reply
from engine.types import NEGATIVE_EMOTIONS, Emotion, StickerChoice

if TYPE_CHECKING:
    from PIL import Image

    from engine.llm import ChatLLM
    from engine.stickers import Sticker, StickerIndex, StickerLibrary

log = logging.getLogger(__name__)

# A sticker of the plan's first-choice emotion wins over a slightly closer one of a
# fallback emotion.
PREFERRED_EMOTION_BONUS = 0.05
# For someone upset, the model's sticker must be among this many best matches of the plan's
# comfort query in each planned emotion (a hug, a teddy bear; not a laughing or shocked face).
COMFORT_CHOICES = 12
# Plan stickers whose match is this close to the best one are taken as equally good.
NEAR_TIE = 0.03
# For comfort the circle is wider, among comforting stickers only (🫂 🤗 🫶 🧸 💜 ...):
# each of them fits pain, and a hug for every hurting person soon reads as a stamp.
COMFORT_TIE = 0.2
COMFORT_CANDIDATES = 8  # per planned emotion
# What a sticker's metadata says when it comforts (a hug, "I'm there for you"): of the
# happy stickers, only these go to someone who is not glad. A smile "to show you care"
# (😊) still reads as a smile at their news, so plain "care" does not count.
_COMFORTING = re.compile(r"\b(?:comfort\w*|hugs?|hugging|support\w*|sympath\w*|"
                         r"caring|there for|reassur\w*|consol\w*)\b", re.IGNORECASE)
# Whom a cheerful sticker mirrors: someone glad or amazed, and no one else.
CHEER_MIRRORS = (Emotion.happiness, Emotion.surprise)

TOOL_ACTION = "[sticker: {}]"  # how a tuned model asks for a sticker after its reply
_ACTION = re.compile(r"\[\s*sticker\s*:\s*([^\]\n]{1,200})\]", re.IGNORECASE)


def find_action(text: str) -> tuple[str, str | None]:
    """The text without its sticker action, and the action's description (or None)."""
    match = _ACTION.search(text)
    if match is None:
        return text, None
    return _ACTION.sub(" ", text), match.group(1).strip() or None


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
    # The person is hurting: this turn or one of their last turns was sad, afraid or
    # angry ("thanks for listening" after news of a death is no moment for a laugh).
    upset: bool = False

    @property
    def cheer_fits(self) -> bool:
        """A cheerful sticker mirrors joy: only for someone glad or amazed who is not
        hurting (a laughing face after a calm "sold my boat today" reads as mockery)."""
        return not self.upset and self.plan.user_emotion in CHEER_MIRRORS


@dataclass
class ModelReply:
    text: str
    sticker: StickerChoice | None
    new_tokens: int = 0


def comforting(sticker: Sticker) -> bool:
    """A sticker whose metadata says it comforts: a hug, a teddy bear, a mended heart."""
    return bool(_COMFORTING.search(f"{sticker.recommendation} {sticker.emotion_description}"))


def cheerful(sticker: Sticker) -> bool:
    """A happy sticker that does not comfort: a laugh, a party, happy tears."""
    return sticker.emotion == Emotion.happiness and not comforting(sticker)


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
    """LLM text, then a library sticker: the LLM's own choice (`sticker_actions`), else
    one chosen by planned emotion and reply text."""

    def __init__(self, llm: ChatLLM, library: StickerLibrary, index: StickerIndex, *,
                 sticker_actions: bool = False) -> None:
        self.llm = llm
        self.library = library
        self.index = index
        # True for an LLM tuned to write sticker actions: it decides when a sticker fits
        # (within what the sticker-rate control allows) and which one.
        self.sticker_actions = sticker_actions
        self.version = f"{llm.version}+ret"
        self.cheerful_ids = frozenset(s.id for s in library if cheerful(s))
        self.comforting_ids = frozenset(s.id for s in library if comforting(s))

    def reply(self, requests: list[ReplyRequest]) -> list[ModelReply]:
        generations = self.llm.generate([r.messages for r in requests])
        replies = []
        for request, generation in zip(requests, generations, strict=True):
            text, action = find_action(generation.text)
            text = clean_reply(text)
            sticker = None
            if request.want_sticker and self.sticker_actions and action:
                sticker = self.sticker_for_action(request, action, text)
            elif request.want_sticker and (not self.sticker_actions or request.force_sticker):
                sticker = self.pick_sticker(request, text)
            replies.append(ModelReply(text, sticker, generation.new_tokens))
        return replies

    @property
    def chooses_stickers(self) -> bool:
        """Whether the model decides when a sticker fits (the responder then lets it send
        stickers in consecutive turns, within the sticker rate)."""
        return self.sticker_actions

    def sticker_for_action(self, request: ReplyRequest, action: str,
                           text: str) -> StickerChoice | None:
        """The library sticker whose description is closest to the action's. When its
        mood does not suit the person's (a laughing face for bad news, a shocked face for
        grief), the plan's sticker for the reply `text` takes its place: comfort for pain,
        not surprise. (Not for the action's words: those asked for the unsuitable face.)"""
        hits = self.index.search(action, k=1, exclude=request.exclude_sticker_ids)
        if not hits:
            return None
        sticker, score = hits[0]
        if not self.suits(sticker, request.plan, cheer=request.cheer_fits):
            log.info("the model's sticker %s (%s) does not suit %s: the plan's instead",
                     sticker.id, sticker.emotion.value, request.plan.user_emotion.value)
            return self.pick_sticker(request, text)
        return library_choice(self.library, sticker, score)

    def suits(self, sticker: Sticker, plan: ReplyPlan, *, cheer: bool = True) -> bool:
        """Whether a sticker's mood suits what the person feels: for someone upset now (or
        grieving: the plan comforts), one of the closest matches of the plan's query; a
        cheerful one only where `cheer` fits; for someone happy, not a gloomy one."""
        if not cheer and sticker.id in self.cheerful_ids:
            return False
        if plan.intent == "comfort" or plan.user_emotion in NEGATIVE_EMOTIONS:
            return any(hit.id == sticker.id for emotion in plan.sticker_emotions
                       for hit, _ in self.index.search(plan.sticker_query, emotion=emotion,
                                                       k=COMFORT_CHOICES))
        return not (sticker.emotion in NEGATIVE_EMOTIONS
                    and plan.user_emotion == Emotion.happiness)

    def pick_sticker(self, request: ReplyRequest, text: str) -> StickerChoice | None:
        """The plan's sticker: the best match of its query and the reply in its emotions.
        Stickers within NEAR_TIE of the best are equally good, and the reply's words
        choose among them, so that every sad chat does not get the same hug. Comfort
        chooses among the comforting stickers within COMFORT_TIE, whatever their emotion
        label (a hug is a hug: 🤗 is labelled happy, 🫂 neutral)."""
        plan = request.plan
        comfort = plan.intent == "comfort"
        query = f"{plan.sticker_query}. {text}"
        exclude = request.exclude_sticker_ids | (frozenset() if request.cheer_fits
                                                 else self.cheerful_ids)
        ranked: list[tuple[float, Sticker, float]] = []
        for rank, emotion in enumerate(plan.sticker_emotions):
            bonus = PREFERRED_EMOTION_BONUS if rank == 0 and not comfort else 0.0
            ranked += [(score + bonus, sticker, score) for sticker, score in self.index.search(
                query, emotion=emotion, k=COMFORT_CANDIDATES if comfort else 3,
                exclude=exclude)]
        if comfort:
            ranked = [r for r in ranked if r[1].id in self.comforting_ids] or ranked
        if not ranked:
            log.info("no sticker left to send for emotions %s", plan.sticker_emotions)
            return None
        top = max(r[0] for r in ranked)
        tie = COMFORT_TIE if comfort else NEAR_TIE
        near = sorted((r for r in ranked if r[0] >= top - tie), key=lambda r: -r[0])
        # A stable choice (not random): the same reply gets the same sticker.
        _, sticker, score = near[zlib.crc32(text.encode("utf-8")) % len(near)]
        return library_choice(self.library, sticker, score)
