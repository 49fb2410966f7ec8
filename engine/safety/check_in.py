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
CRISIS_REPLY_LABELS = ("self_harm", "harm_others")  # a bot turn that was the crisis reply
# After a check-in, no new one for this many bot turns (a clear crisis is still answered).
COOLDOWN_TURNS = 20


@dataclass(frozen=True)
class SafetyState:
    """What the conversation's last check-in means for this turn."""

    awaiting_answer: str | None = None  # "self" | "others": the bot's last turn asked
    turns_since_check_in: int | None = None  # bot turns since the last check-in
    after_crisis_reply: bool = False  # the bot's last turn was the written crisis reply

    @property
    def may_check_in(self) -> bool:
        return self.turns_since_check_in is None or self.turns_since_check_in >= COOLDOWN_TURNS

    @classmethod
    def from_bot_labels(cls, labels: list[str | None]) -> SafetyState:
        """The state from the `safety` labels of the bot's turns, newest first."""
        after_crisis = bool(labels) and labels[0] in CRISIS_REPLY_LABELS
        for age, label in enumerate(labels):
            for target, name in CHECK_IN_LABELS.items():
                if label == name:
                    return cls(target if age == 0 else None, age, after_crisis)
        return cls(after_crisis_reply=after_crisis)


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
