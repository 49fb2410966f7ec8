"""The responder's safety step: before generation (crisis) and after it (reply, sticker).

Before: each turn's text and sticker meaning go through the crisis classifier. A turn
read as self-harm or harm to others is not given to the reply model at all: it gets the
written crisis reply for the person's language and the configured country, no sticker,
and a label and note that the transcript stores for operators (Message.safety and an
automatic ReviewMark).

After: the reply text passes the injection output filter (no recited system prompt, no
links) and the sticker passes the StickerGate (library stickers, or generated ones that
were checked); what is refused is logged for operators without the message text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.safety.crisis import CrisisAssessment, CrisisClassifier, crisis_input
from engine.safety.injection import filter_reply
from engine.safety.resources import CrisisResources
from engine.safety.sticker_check import StickerGate
from engine.types import Perception, StickerChoice, UserTurn

if TYPE_CHECKING:
    from engine.embeddings import TextEncoder
    from engine.settings import Settings
    from engine.stickers import StickerLibrary

log = logging.getLogger(__name__)

CRISIS_VERSION = "safety-template"


@dataclass
class ReviewedOutput:
    text: str
    sticker: StickerChoice | None
    note: str | None  # for operators: what was changed and why


@dataclass
class SafetyPolicy:
    crisis: CrisisClassifier | None
    resources: CrisisResources
    stickers: StickerGate | None = None
    language: str = "en"
    country: str = ""

    # --- before generation ---------------------------------------------------------
    def assess(self, turns: list[UserTurn],
               perceptions: list[Perception]) -> list[CrisisAssessment | None]:
        """The crisis verdict per turn (None everywhere when no classifier is loaded)."""
        if self.crisis is None:
            return [None] * len(turns)
        inputs = [crisis_input(" ".join([t.text] + [m.caption for m in t.media if m.caption]),
                               p.media_descriptions)
                  for t, p in zip(turns, perceptions, strict=True)]
        return list(self.crisis.assess_inputs(inputs))

    def crisis_text(self, label: str, turn: UserTurn) -> str:
        return self.resources.reply(label, turn.language or self.language, self.country)

    # --- after generation ----------------------------------------------------------
    def review(self, turn: UserTurn, text: str, sticker: StickerChoice | None,
               system_prompt: str) -> ReviewedOutput:
        notes: list[str] = []
        text, changed = filter_reply(text, system_prompt)
        if changed:
            notes.append(f"reply filtered: {changed}")
        if sticker is not None and self.stickers is not None:
            sticker, refused = self.stickers.review(sticker)
            if refused:
                notes.append(f"sticker refused: {refused}")
        elif sticker is not None:
            log.warning("no sticker gate configured: dropping the sticker of %s", turn.task_id)
            sticker = None
            notes.append("sticker refused: no sticker gate")
        for note in notes:
            log.warning("safety: %s on turn %s", note, turn.task_id)
        return ReviewedOutput(text, sticker, "; ".join(notes) or None)


def load_safety_policy(settings: Settings, encoder: TextEncoder,
                       library: StickerLibrary) -> SafetyPolicy:
    """The policy from settings: the committed crisis weights, the resources file, and
    the sticker gate with the diffusers safety checker when its path is set."""
    from engine.safety.sticker_check import SafetyChecker

    crisis = CrisisClassifier.load(encoder)
    checker = None
    if settings.safety_checker_path:
        checker = SafetyChecker.from_local_path(settings.safety_checker_path)
        log.info("generated stickers are checked by the diffusers safety checker")
    elif settings.sd_path and settings.sticker_mode != "ret":
        log.warning("STICKERBOT_SD_PATH is set without STICKERBOT_SAFETY_CHECKER_PATH: "
                    "generated stickers are %s",
                    "sent unchecked (STICKERBOT_ALLOW_UNCHECKED_GENERATED)"
                    if settings.allow_unchecked_generated else "not sent")
    gate = StickerGate(library, settings.generated_dir, checker=checker, crisis=crisis,
                       allow_unchecked=settings.allow_unchecked_generated)
    return SafetyPolicy(crisis=crisis,
                        resources=CrisisResources.load(settings.safety_resources_path or None),
                        stickers=gate, language=settings.safety_language,
                        country=settings.safety_country)
