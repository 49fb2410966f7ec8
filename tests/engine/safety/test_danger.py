"""Danger to the person writing (someone hurts, threatens, stalks or breaks in on them)
gets the written danger reply; the same words in ordinary chat do not."""

from __future__ import annotations

import pytest

from engine.safety.check_in import SafetyState
from engine.safety.crisis import LABELS, CrisisAssessment
from engine.safety.danger import in_danger
from engine.safety.policy import SafetyPolicy
from engine.safety.resources import CrisisResources
from engine.types import UserTurn
from tests.factories import committed_crisis_classifier


@pytest.mark.parametrize("text, kind", [
    ("my boyfriend hit me again last night", "abuse"),
    ("my dad beats me when he's drunk", "abuse"),
    ("she always slaps me when i talk back", "abuse"),
    ("a man grabbed me on the way home and i got away", "abuse"),
    ("he pushed me down the stairs", "abuse"),
    ("my husband said he's going to kill me if i leave", "threat"),
    ("i'm scared he'll hurt me when he gets home", "threat"),
    ("he threatened to kill me", "threat"),
    ("he won't let me leave the house", "threat"),
    ("someone is trying to get into my flat, i can hear them at the door", "intruder"),
    ("there's someone knocking on my window and it's 2am", "intruder"),
    ("i think someone is following me home", "intruder"),
    ("someone broke into my house while i was asleep", "intruder"),
    ("he's banging on the door and screaming, i'm hiding in the bathroom", "intruder"),
    ("there's a guy outside my house and he's been there for an hour", "intruder"),
    ("my ex keeps turning up outside my work and won't leave me alone", "intruder"),
])
def test_danger_named_by_the_person_at_its_receiving_end(text, kind) -> None:
    assert in_danger(text) == kind


@pytest.mark.parametrize("text", [
    "someone's knocking on the door, prob the pizza",
    "someone is outside my door, it's my mate",
    "my mum is going to kill me when she sees my grades",
    "scared my mum will kill me when she sees the car",
    "my boss will murder me if i'm late",
    "my brother beat me at fifa again",
    "she beat me to the last slice",
    "She beat me up the last section!",
    "hit me up when you're free",
    "it hit me that i'll never see him again",
    "my toddler hit me in the face with a spoon lol",
    "my sparring partner choked me out in bjj tonight",
    "he never hit me, he just yells",
    "my mum pushed me to apply for the job",
    "the cat keeps following me around the house",
    "just watched a film where someone is stalking her",
    "i could strangle my flatmate",
])
def test_the_same_words_in_ordinary_chat_are_not_danger(text) -> None:
    assert in_danger(text) is None


def turn(text: str) -> UserTurn:
    return UserTurn(platform="web", chat_id="c", user_id="u", message_id="1", text=text)


def assessment(label: str | None, text: str, phrase: str | None = None) -> CrisisAssessment:
    """The classifier's verdict on `text`: `label` from the model, and the danger its
    patterns find."""
    probs = dict.fromkeys(LABELS, 0.0)
    probs[label or "none"] = 1.0
    return CrisisAssessment(label, False, probs, 1.0 if label else 0.0, phrase,
                            danger=in_danger(text))


def decide(label: str | None, text: str, state: SafetyState | None = None,
           phrase: str | None = None):
    return SafetyPolicy.decide_turn(turn(text), assessment(label, text, phrase),
                                    state or SafetyState())


def test_danger_gets_the_written_danger_reply_and_no_sticker_after() -> None:
    decision = decide(None, "my dad beats me when he's drunk")
    assert (decision.action, decision.label) == ("crisis", "danger")
    after = SafetyState.from_bot_labels(["danger"])
    assert after.after_crisis_reply


def test_own_risk_comes_before_the_danger() -> None:
    assert decide("self_harm", "my dad hits me and i want to kill myself",
                  phrase="self_harm").label == "self_harm"
    # Revenge for past abuse is a threat; a fear of being hurt is the danger.
    assert decide("harm_others", "my dad's going to regret every time he hit me. i'm "
                  "bigger than him now").label == "harm_others"
    assert decide("harm_others", "i'm scared he'll hurt me when he gets home").label \
        == "danger"


def test_a_yes_to_the_check_in_is_still_the_crisis_reply() -> None:
    assert decide(None, "yes. and he hits me", SafetyState("self", 0)).label == "self_harm"


def test_the_danger_reply_asks_if_they_are_safe_and_names_local_help() -> None:
    resources = CrisisResources.load()
    text = resources.reply("danger", "en", "GB")
    assert "999" in text and "0808 2000 247" in text and text.endswith("Are you safe right now?")
    assert "I'm a bot" in text
    assert "1-800-799-7233" in resources.reply("danger", "en", "US")
    assert "116 016" in resources.reply("danger", "de", "DE")
    # A country without its own list: the default directory and emergency words.
    assert "findahelpline.com" in resources.reply("danger", "en", "NZ")
    assert "Bist du gerade in Sicherheit?" in resources.reply("danger", "de")


def test_a_resources_file_without_the_danger_reply_gets_the_bundled_words(tmp_path) -> None:
    import json

    from engine.safety.resources import DEFAULT_RESOURCES

    data = json.loads(DEFAULT_RESOURCES.read_text(encoding="utf-8"))
    for entry in data["countries"].values():
        entry.pop("danger", None)
    for words in data["templates"].values():
        words.pop("danger", None)
    (tmp_path / "old.json").write_text(json.dumps(data), encoding="utf-8")
    text = CrisisResources.load(tmp_path / "old.json").reply("danger", "fr", "FR")
    assert text.endswith("Are you safe right now?") and "112" in text


def test_a_victim_is_not_told_to_step_away_from_people_they_might_hurt(encoder) -> None:
    """The crisis model alone read "i'm scared he'll hurt me when he gets home" as a threat
    to others: the harm-to-others reply told the person at risk to step away from anyone
    they might hurt."""
    crisis = committed_crisis_classifier(str(encoder.model_path))
    policy = SafetyPolicy(crisis=crisis, resources=CrisisResources.load())
    text = "i'm scared he'll hurt me when he gets home"
    [decision] = policy.decide([turn(text)], [_perceived()], [[]], [SafetyState()])
    assert decision.label == "danger"
    reply = policy.crisis_text(decision.label, turn(text))
    assert "Are you safe right now?" in reply and "step away" not in reply


def _perceived():
    from engine.types import Emotion, Perception

    return Perception(emotion=Emotion.fear, valence=-0.7, confidence=0.9)


@pytest.mark.parametrize("text, answer", [
    ("yes", "safe"), ("yeah i'm ok now", "safe"), ("i'm at my sister's", "safe"),
    ("ok i've locked the bedroom door. i think they've gone", "safe"),
    ("no", "unsafe"), ("not really", "unsafe"), ("no he's not here yet. he's back at 6", "unsafe"),
    ("he's still outside", "unsafe"), ("idk", "unsafe"), ("i'm home alone", None),
])
def test_the_answer_to_are_you_safe_is_read(text, answer) -> None:
    from engine.safety.danger import read_safety_answer

    assert read_safety_answer(text) == answer


def test_the_turn_after_the_danger_reply_gets_written_words_not_the_llm() -> None:
    """Through serve, "i'm home alone" after the danger reply got the small LLM's "You're
    safe there. You're not alone.", and "i think they've gone" the self-harm check-in."""
    after = SafetyState.from_bot_labels(["danger", None])
    assert after.after_danger_reply and after.after_crisis_reply
    for text, answer in (("i'm home alone", "unclear"), ("i think they've gone", "safe"),
                         ("he's back at 6", "unsafe"),
                         ("someone is trying to get in the back door", "unsafe")):
        decision = decide(None, text, after)
        assert (decision.action, decision.target) == ("follow_up", answer), text
    # Their own crisis still comes first, and one turn later the bot talks as usual.
    assert decide("self_harm", "i just want to die", after).action == "crisis"
    assert not SafetyState.from_bot_labels([None, "danger"]).after_danger_reply


def test_the_follow_up_names_the_emergency_number_and_the_abuse_helpline() -> None:
    policy = SafetyPolicy(crisis=None, resources=CrisisResources.load(), country="GB")
    unsafe = policy.follow_up_text("unsafe", turn("no"))
    assert "999" in unsafe and "0808 2000 247" in unsafe and "now" in unsafe
    assert policy.follow_up_text("safe", turn("yes")).startswith("I'm really glad you're safe")
    assert policy.follow_up_text("unclear", turn("hm")).endswith("What's happening right now?")
