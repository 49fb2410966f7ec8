"""The check-in: when risk is passive or uncertain, the bot asks directly, and reads the
next turn as the answer.

Careful services ask plainly ("are you having thoughts of ending your life?") rather
than guess: asking does not put the idea in anyone's head, and the answer decides what
comes next. Yes → the written crisis reply. No → the conversation carries on, and the
bot does not ask again for a while. Anything else → the classifier reads the turn with
the question as its context.

The state lives in the transcript (the bot turn's `safety` is "check_in_self" or
"check_in_others"), so it survives a restart: storage.safety_state reads it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.safety.phrases import explicit_risk

CHECK_IN_LABELS = {"self": "check_in_self", "others": "check_in_others"}
# A bot turn that was a written crisis reply (engine.safety.resources' kinds).
CRISIS_REPLY_LABELS = ("self_harm", "harm_others", "danger")
# After a check-in, no new one for this many bot turns (a clear crisis is still answered).
COOLDOWN_TURNS = 20
# No sticker while a written crisis or danger reply is among the bot's last turns: no
# surprised face two turns after "are you safe right now?".
STICKER_PAUSE_TURNS = 3


@dataclass(frozen=True)
class SafetyState:
    """What the conversation's last check-in means for this turn."""

    awaiting_answer: str | None = None  # "self" | "others": the bot's last turn asked
    turns_since_check_in: int | None = None  # bot turns since the last check-in
    # a written crisis or danger reply is among the bot's last STICKER_PAUSE_TURNS turns
    after_crisis_reply: bool = False
    after_danger_reply: bool = False  # ... the danger reply, which asked "are you safe?"

    @property
    def may_check_in(self) -> bool:
        return self.turns_since_check_in is None or self.turns_since_check_in >= COOLDOWN_TURNS

    @classmethod
    def from_bot_labels(cls, labels: list[str | None]) -> SafetyState:
        """The state from the `safety` labels of the bot's turns, newest first."""
        after_crisis = any(label in CRISIS_REPLY_LABELS
                           for label in labels[:STICKER_PAUSE_TURNS])
        after_danger = bool(labels) and labels[0] == "danger"
        for age, label in enumerate(labels):
            for target, name in CHECK_IN_LABELS.items():
                if label == name:
                    return cls(target if age == 0 else None, age, after_crisis, after_danger)
        return cls(after_crisis_reply=after_crisis, after_danger_reply=after_danger)


_YES = re.compile(
    r"^(?:yes|yeah|yea|yep|yup|ya|yah|ye|y|si|ja|oui|sort of|kind of|kinda|sorta|"
    r"sometimes|maybe|i think so|i guess|a bit|a little|a lot|often|lately|every ?day|"
    r"every night|all the time|constantly|honestly yes|honestly yeah|"
    r"probably|i don'?t know,? maybe|more than i'?d like)\b")
_NO = re.compile(
    r"^(?:no|nah|nope|naw|not really|not at all|never|of course not|god no|hell no|"
    r"definitely not|no way|i'?m fine|i'?m ok(?:ay)?|i'?m good|i'?m safe|haha no|lol no|"
    r"i am fine|i am ok(?:ay)?|nothing like that|not like that)\b")
# "no, but sometimes ..." is not a no.
_BUT = re.compile(r"\b(but|except|although|though|unless)\b")


def read_answer(text: str) -> str | None:
    """'yes', 'no', or None when the turn does not plainly answer the question."""
    plain = re.sub(r"[^\w\s']", " ", text.lower().replace("’", "'")).strip()
    plain = re.sub(r"\s+", " ", plain)
    if not plain:
        return None
    if _NO.match(plain):
        # "no, but sometimes ..." and "no not like that. i just wish i was dead" are not
        # a no: the rest of the turn is read by the classifier, the question in its context.
        return None if _BUT.search(plain) or explicit_risk(text) else "no"
    if _YES.match(plain):
        return "yes"
    return None
