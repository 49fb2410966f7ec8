"""The graded answer: crisis reply, check-in question, or a normal reply, and how the turn
after a check-in is read."""

from __future__ import annotations

import pytest

from engine.safety.check_in import COOLDOWN_TURNS, SafetyState, read_answer
from engine.safety.crisis import LABELS, NO_RISK, CrisisAssessment
from engine.safety.policy import SafetyPolicy
from engine.safety.resources import CrisisResources
from engine.types import UserTurn


def turn(text: str, language: str | None = None) -> UserTurn:
    return UserTurn(platform="web", chat_id="c", user_id="u", message_id="1", text=text,
                    language=language)


def assessment(label: str | None = None, check_in: bool = False,
               others: bool = False) -> CrisisAssessment:
    probs = dict.fromkeys(LABELS, 0.0)
    probs["harm_others" if others else "passive"] = 0.6 if check_in or label else 0.0
    probs["none"] = 1.0 - sum(probs.values())
    return CrisisAssessment(label, check_in, probs, 0.9 if label else 0.1)


@pytest.mark.parametrize("text, answer", [
    ("yes", "yes"), ("Yeah.", "yes"), ("kind of", "yes"), ("sometimes tbh", "yes"),
    ("every night", "yes"), ("i think so", "yes"), ("maybe", "yes"),
    ("no", "no"), ("Nope!", "no"), ("no, I'm just tired", "no"), ("god no", "no"),
    ("not really", "no"), ("i'm fine honestly", "no"), ("I am fine", "no"),
    ("no but sometimes I think about it", None), ("my boss is the problem", None),
    ("no not like that. i just wish i was dead", None), ("nope. i want to kill him", None),
    ("", None), ("I am so tired of all of it", None),
])
def test_the_answer_to_the_check_in_is_read(text, answer) -> None:
    assert read_answer(text) == answer


def test_the_state_comes_from_the_bots_last_labels() -> None:
    assert SafetyState.from_bot_labels([]) == SafetyState()
    assert SafetyState.from_bot_labels(["check_in_self", None]).awaiting_answer == "self"
    later = SafetyState.from_bot_labels([None, None, "check_in_others"])
    assert later.awaiting_answer is None and later.turns_since_check_in == 2
    assert not later.may_check_in
    assert SafetyState.from_bot_labels([None] * COOLDOWN_TURNS + ["check_in_self"]).may_check_in
    # The crisis reply as the bot's last turn: the next reply sends no sticker.
    assert SafetyState.from_bot_labels(["self_harm", "check_in_self"]).after_crisis_reply
    # No sticker for a few turns after it; then they may come back.
    assert SafetyState.from_bot_labels([None, "harm_others"]).after_crisis_reply
    assert not SafetyState.from_bot_labels([None, None, None, "harm_others"]).after_crisis_reply


def decide(assessment_: CrisisAssessment, state: SafetyState, text: str = "hm"):
    return SafetyPolicy.decide_turn(turn(text), assessment_, state)


def test_clear_risk_gets_the_crisis_reply() -> None:
    decision = decide(assessment("self_harm"), SafetyState())
    assert (decision.action, decision.label) == ("crisis", "self_harm")


def test_uncertain_risk_gets_a_check_in_once_in_a_while() -> None:
    decision = decide(assessment(check_in=True), SafetyState())
    assert (decision.action, decision.label, decision.target) == ("check_in",
                                                                  "check_in_self", "self")
    recently = SafetyState(None, 3)
    assert decide(assessment(check_in=True), recently).action == "reply"
    # A clear crisis is answered even right after a check-in.
    assert decide(assessment("harm_others"), recently).action == "crisis"


def test_a_check_in_about_others_asks_about_others() -> None:
    decision = decide(assessment(check_in=True, others=True), SafetyState())
    assert decision.label == "check_in_others" and decision.target == "others"


def test_yes_after_a_check_in_gets_the_crisis_reply() -> None:
    decision = decide(NO_RISK, SafetyState("self", 0), "yeah, kind of")
    assert (decision.action, decision.label) == ("crisis", "self_harm")
    decision = decide(NO_RISK, SafetyState("others", 0), "yes")
    assert (decision.action, decision.label) == ("crisis", "harm_others")


def test_no_after_a_check_in_carries_on_without_asking_again() -> None:
    assert decide(assessment(check_in=True), SafetyState("self", 0), "no, just tired").action \
        == "reply"
    # ...but "no" does not hide a clear crisis in the same turn.
    assert decide(assessment("self_harm"), SafetyState("self", 0), "no").action == "crisis"


def test_worry_that_goes_on_after_an_unanswered_check_in_gets_the_crisis_reply() -> None:
    decision = decide(assessment(check_in=True), SafetyState("self", 0),
                      "what's the point of anything")
    assert (decision.action, decision.label) == ("crisis", "self_harm")


def test_a_no_that_goes_on_to_wish_to_be_dead_gets_the_crisis_reply() -> None:
    decision = decide(assessment(check_in=True), SafetyState("self", 0),
                      "no not like that. i just wish i was dead")
    assert (decision.action, decision.label) == ("crisis", "self_harm")


def test_an_unclear_answer_is_left_to_the_classifier() -> None:
    assert decide(NO_RISK, SafetyState("self", 0), "my boss is the problem").action == "reply"
    assert decide(assessment("self_harm"), SafetyState("self", 0),
                  "I have the pills here").action == "crisis"


@pytest.mark.parametrize("language, expected", [
    ("en", "are you having thoughts of ending your life"), ("de-AT", "Hast du Gedanken"),
    ("fr", "as-tu des pensées"), ("es", "estás teniendo pensamientos"),
    ("pt", "are you having thoughts"),
])
def test_the_check_in_question_is_written_and_says_it_is_a_bot(language, expected) -> None:
    text = CrisisResources.load().check_in("self", language)
    assert expected in text
    assert "bot" in text.lower()
    assert "hurting someone" in CrisisResources.load().check_in("others", "en")
