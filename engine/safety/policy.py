"""The responder's safety step: before generation (risk) and after it (reply, sticker).

Before: each turn, read with the turns before it, gets one of these answers.
- Clear risk of self-harm or of harming someone: the model is not asked at all; the
  person gets the written crisis reply for their language and the configured country,
  no sticker, and the transcript stores a label and note for operators.
- Danger from someone else (hurt, threatened, stalked, someone breaking in;
  engine.safety.danger): the written danger reply (emergency number, an abuse
  helpline, "are you safe right now?"), no sticker; the person's own risk of self-harm
  comes first. The next turn is read as the answer and gets written words too.
- Passive or uncertain risk: a written check-in that asks directly whether they are
  thinking of hurting themselves (or someone), no sticker; the next turn is read as the
  answer (engine.safety.check_in).
- A question about what the bot is, or about a life of its own: a written answer that
  says it is a bot (engine.safety.honesty).
- Otherwise the reply model answers as usual.

After: the reply text passes the injection output filter (no recited system prompt, no
links) and loses any sentence that claims to be human or tells of a life, and the
sticker passes the StickerGate (library stickers, or generated ones that were checked);
what is refused is logged for operators without the message text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.safety.check_in import CHECK_IN_LABELS, SafetyState, read_answer
from engine.safety.crisis import CrisisAssessment, CrisisClassifier, context_input, crisis_input
from engine.safety.danger import read_safety_answer
from engine.safety.honesty import without_human_life, written_answer
from engine.safety.injection import filter_reply
from engine.safety.resources import DANGER, CrisisResources
from engine.safety.sticker_check import StickerGate
from engine.types import HistoryTurn, Perception, StickerChoice, UserTurn

if TYPE_CHECKING:
    from engine.embeddings import TextEncoder
    from engine.settings import EngineSettings
    from engine.stickers import StickerLibrary

log = logging.getLogger(__name__)

CRISIS_VERSION = "safety-template"
# The previous turns the classifier reads with a turn: the person's last and the bot's.
CONTEXT_TURNS = 2


@dataclass(frozen=True)
class SafetyDecision:
    """What the responder does with a turn before any generation."""

    # "reply" | "check_in" | "crisis" | "honest" (a question about the bot) | "follow_up"
    # (after the danger reply; `target` says how they answered: safe, unsafe, unclear)
    action: str
    # crisis: "self_harm" | "harm_others" | "danger"; check-in: its label
    label: str | None = None
    target: str = "self"  # whom the risk is about: "self" | "others"
    note: str | None = None  # for operators
    assessment: CrisisAssessment | None = None
    answer: str | None = None  # "honest": the written answer to send


REPLY = SafetyDecision("reply")


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
    def decide(self, turns: list[UserTurn], perceptions: list[Perception],
               histories: list[list[HistoryTurn]],
               states: list[SafetyState]) -> list[SafetyDecision]:
        """One decision per turn (no crisis replies or check-ins when no classifier is
        loaded)."""
        previous = [next((h.text for h in reversed(history) if h.role == "bot"), "")
                    for history in histories]
        if self.crisis is None:
            return [self.honest_or_reply(t, REPLY, p) for t, p in zip(turns, previous,
                                                                     strict=True)]
        pairs = [(self.classifier_context(t, history),
                  crisis_input(" ".join([t.text] + [m.caption for m in t.media if m.caption]),
                               p.media_descriptions))
                 for t, p, history in zip(turns, perceptions, histories, strict=True)]
        assessments = self.crisis.assess_pairs(pairs)
        return [self.decide_turn(t, a, s, p)
                for t, a, s, p in zip(turns, assessments, states, previous, strict=True)]

    def classifier_context(self, turn: UserTurn, history: list[HistoryTurn]) -> str:
        """The previous turns as the classifier reads them. The bot's written crisis reply
        is read as the check-in question it stands for: the classifier learnt what
        follows that question, and the long, soothing reply otherwise fills the context
        and reads as calm ("I'm done." right after it got a normal reply)."""
        language = turn.language or self.language
        written = {self.resources.reply(kind, language, self.country): target
                   for kind, target in (("self_harm", "self"), ("harm_others", "others"))}
        return context_input([
            (h.role, self.resources.check_in(written[h.text], language)
             if h.role == "bot" and h.text in written else h.text)
            for h in history[-CONTEXT_TURNS:]])

    @staticmethod
    def decide_turn(turn: UserTurn, assessment: CrisisAssessment,
                    state: SafetyState, previous_reply: str = "") -> SafetyDecision:
        """The decision for one turn from the classifier's verdict and the check-in state
        (`previous_reply`: the bot's last turn, which a written answer does not repeat)."""
        danger = assessment.danger
        if state.after_danger_reply and assessment.label != "self_harm":
            # The answer to "Are you safe right now?": written words, not the small LLM's
            # ("You're safe there. You're not alone." to someone home alone at 2am).
            answer = read_safety_answer(turn.text) or ("unsafe" if danger else "unclear")
            return SafetyDecision("follow_up", None, answer,
                                  f"danger follow-up: {answer}", assessment)
        if state.awaiting_answer is not None:
            answer = read_answer(turn.text)
            if answer == "yes":
                label = "self_harm" if state.awaiting_answer == "self" else "harm_others"
                return SafetyDecision("crisis", label, state.awaiting_answer,
                                      f"crisis: {label} (answered yes to the check-in)",
                                      assessment)
            if answer == "no" and not assessment.is_crisis:
                return SafetyDecision("reply", note=None, assessment=assessment)
            if answer is None and assessment.check_in and danger is None:
                # Asked, not answered, and the worry goes on: the written crisis reply.
                label = "self_harm" if state.awaiting_answer == "self" else "harm_others"
                return SafetyDecision("crisis", label, state.awaiting_answer,
                                      f"crisis: {label} (concern went on after the check-in)",
                                      assessment)
        if danger is not None and not SafetyPolicy.own_risk_first(assessment, danger):
            return SafetyDecision("crisis", DANGER, "self", f"crisis: danger ({danger})",
                                  assessment)
        if assessment.is_crisis:
            why = "named plainly" if assessment.phrase else f"score {assessment.score:.2f}"
            return SafetyDecision("crisis", assessment.label,
                                  "others" if assessment.label == "harm_others" else "self",
                                  f"crisis: {assessment.label} ({why})", assessment)
        if assessment.check_in and state.may_check_in:
            label = CHECK_IN_LABELS[assessment.target]
            return SafetyDecision("check_in", label, assessment.target,
                                  f"check-in: asked about {assessment.target} "
                                  f"(concern {assessment.concern:.2f})", assessment)
        return SafetyPolicy.honest_or_reply(turn, SafetyDecision("reply", assessment=assessment),
                                            previous_reply)

    @staticmethod
    def own_risk_first(assessment: CrisisAssessment, danger: str) -> bool:
        """Whether the person's own risk is answered rather than the danger they are in:
        their self-harm always; harm to others when named plainly, or when the danger is
        past abuse ("he's going to regret every time he hit me"). A fear of being hurt
        read as a threat ("i'm scared he'll hurt me when he gets home") is the danger."""
        if assessment.label == "self_harm":
            return True
        return assessment.label == "harm_others" and (assessment.phrase == "harm_others"
                                                      or danger == "abuse")

    @staticmethod
    def honest_or_reply(turn: UserTurn, reply: SafetyDecision,
                        previous_reply: str = "") -> SafetyDecision:
        """The written answer to a question about the bot, else `reply`."""
        answer = written_answer(turn.text, previous_reply)
        if answer is None:
            return reply
        return SafetyDecision("honest", assessment=reply.assessment, answer=answer)

    def crisis_text(self, label: str, turn: UserTurn) -> str:
        return self.resources.reply(label, turn.language or self.language, self.country)

    def check_in_text(self, target: str, turn: UserTurn) -> str:
        return self.resources.check_in(target, turn.language or self.language)

    def follow_up_text(self, answer: str, turn: UserTurn) -> str:
        """The written words after the danger reply, for a "safe", "unsafe" or "unclear"
        answer."""
        return self.resources.reply(f"{DANGER}_{answer}", turn.language or self.language,
                                    self.country)

    # --- after generation ----------------------------------------------------------
    def review(self, turn: UserTurn, text: str, sticker: StickerChoice | None,
               system_prompt: str) -> ReviewedOutput:
        notes: list[str] = []
        text, changed = filter_reply(text, system_prompt)
        if changed:
            notes.append(f"reply filtered: {changed}")
        text, lived = without_human_life(text)
        if lived:
            notes.append("reply filtered: a human life")
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


def load_safety_policy(settings: EngineSettings, encoder: TextEncoder,
                       library: StickerLibrary) -> SafetyPolicy:
    """The policy from settings: the committed crisis weights, the resources file, and
    the sticker gate with the diffusers safety checker when its path is set."""
    from engine.safety.sticker_check import SafetyChecker

    crisis = CrisisClassifier.load(encoder.model_path, encoder=encoder)
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
