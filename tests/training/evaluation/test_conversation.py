"""What a person notices in replies, measured: each failure and the sticker figures on
replies built by hand, then a real replay of corpus dialogues through the responder."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from engine.types import Emotion
from training.data import read_sessions
from training.evaluation.conversation import (
    conversation_metrics,
    echoes_user,
    empty_or_cut,
    repeats_sentence,
    replay_split,
    side_by_side,
    sticker_metrics,
    talks_of_human_life,
    wrong_valence,
)
from training.evaluation.items import EvalItem, Turn
from training.evaluation.run import EvaluateOptions, evaluate

# The test split waits, untouched, for the final report.
VALIDATION = Path("training/corpus/validation.jsonl")


def reply(text: str, *context: tuple[str, str], **fields) -> EvalItem:
    fields.setdefault("system", "s")
    return EvalItem(item_id="0:0", context=[Turn(r, t) for r, t in context], text=text,
                    **fields)


def test_a_sentence_said_twice_or_again_from_the_last_turn_is_a_repeat() -> None:
    assert repeats_sentence(reply("She's the best. She's the best."))
    assert repeats_sentence(reply("I'm sorry to hear that. Want to talk?",
                                  ("user", "third rejection"),
                                  ("assistant", "I'm sorry to hear that."),
                                  ("user", "yeah")))
    assert not repeats_sentence(reply("Third one stings more. What did they say?",
                                      ("assistant", "That sounds rough."), ("user", "yeah")))


def test_the_persons_sentence_copied_back_is_an_echo() -> None:
    said = ("user", "There's a weird noise downstairs and I'm home alone.")
    assert echoes_user(reply("There's a weird noise downstairs and you're home alone.", said))
    assert not echoes_user(reply("That would spook me. Can you check the locks?", said))


def test_a_human_life_is_caught_and_plain_empathy_is_not() -> None:
    assert talks_of_human_life("I'm a bit of a morning person, I love getting out of bed")
    assert talks_of_human_life("My dog does that too!")
    assert talks_of_human_life("When I was a kid I hated exams.")
    assert not talks_of_human_life("I'm a bot, but that sounds exhausting. How's your dog?")
    assert not talks_of_human_life("Your landlord kept all of it? That's infuriating.")


def test_empty_and_cut_off_replies() -> None:
    assert empty_or_cut("")
    assert empty_or_cut("🙂")
    assert empty_or_cut("I hope you and")
    assert empty_or_cut("That must be hard,")
    assert empty_or_cut("I'm here with you. Tell me more?", "I'm here with you. Tell me more?")
    assert not empty_or_cut("That's huge, congrats!")
    assert not empty_or_cut("lol fair")


def test_sorrow_at_good_news_and_cheer_at_bad_news() -> None:
    valence = {"So sorry to hear that.": -0.8, "Yay, amazing!!": 0.9, "Tell me more?": 0.0}.get
    good = {"user_emotion": "happiness"}
    assert wrong_valence(reply("So sorry to hear that.", meta=good), "good", valence)
    assert wrong_valence(reply("Yay, amazing!!"), "bad", valence)
    assert not wrong_valence(reply("Tell me more?"), "bad", valence)
    # The written crisis reply is not the model's tone.
    assert not wrong_valence(reply("So sorry to hear that.", meta={"safety": "self_harm"}),
                             "good", valence)


def test_sticker_figures() -> None:
    emotions = {"hug": Emotion.sadness, "party": Emotion.happiness}
    library = type("Lib", (), {
        "__contains__": lambda self, key: key in emotions,
        "get": lambda self, key: SimpleNamespace(
            emotion=emotions[key], emotion_description="",
            recommendation="Use it to comfort someone." if key == "hug" else "Celebrate!")})()
    first = ("user", "my dog died")
    items = [
        reply("so sorry", first, sticker_id="hug", reference_sticker_id="hug"),
        reply("oh no", first, ("assistant", "x"), ("user", "y"), sticker_id="party",
              reference_sticker_id="hug"),
        reply("hugs", first, ("assistant", "x"), ("user", "y")),
        reply("yay", first, sticker_id="party"),
    ]
    news = ["bad", "bad", "bad", "good"]
    figures = sticker_metrics(items, library, news)
    assert figures["sticker_rate"] == 0.75
    assert figures["sticker_rate_first_turn"] == 1.0
    assert abs(figures["sticker_fit_news"] - 2 / 3) < 1e-9  # the party popper on bad news
    assert figures["sticker_fit_gold"] == 0.5
    assert figures["top_sticker"] == "party" and figures["top_sticker_share"] == 2 / 3
    assert figures["distinct_stickers_per_100"] == 50.0


def test_replay_answers_every_turn_with_the_bots_own_history(
        classifier, library, index, tmp_path) -> None:
    from tests.factories import tiny_responder

    sessions = read_sessions(VALIDATION)[:3]
    responder = tiny_responder(classifier, library, index)
    items = replay_split(responder, sessions, "tiny", library, batch_size=2)
    assert len(items) == sum(len(s["conversation"]) for s in sessions)
    second = next(i for i in items if i.meta["turn"] == 1 and i.meta["session"]
                  == sessions[0]["session_id"])
    first = next(i for i in items if i.meta["turn"] == 0 and i.meta["session"]
                 == sessions[0]["session_id"])
    # The bot remembers what it said, not what the corpus said.
    assert second.context[1].text == first.text
    assert second.reference_text == sessions[0]["conversation"][1]["system_message"]
    figures = conversation_metrics(items, lambda t: classifier.predict_one(t).valence, library)
    assert figures["replies"] == len(items)
    for key in ("repeated_sentence", "echo", "wrong_valence", "human_life", "sticker_rate"):
        assert 0.0 <= figures[key] <= 1.0
    results = evaluate(EvaluateOptions(items=items, out=tmp_path, library=library,
                                       emotion_classifier=classifier, bertscore=False,
                                       multimodal=False))
    assert "conversation" in results["systems"]["tiny"]
    page = (tmp_path / "side_by_side.md").read_text()
    assert sessions[0]["conversation"][0]["user_message"] in page
    assert "Repeats" in (tmp_path / "report.md").read_text()


def test_side_by_side_puts_systems_under_each_person_turn() -> None:
    meta = {"session": "a-1", "turn": 0, "user_emotion": "sadness"}
    items = [reply(text, ("user", "my cat is sick"), meta=meta, system=system,
                   reference_text="Oh no, what did the vet say?")
             for system, text in (("tuned", "Oh no. Is she eating?"), ("untuned", "I'm sorry."))]
    page = side_by_side(items)
    assert page.index("**Person:** my cat is sick") < page.index("*tuned:* Oh no. Is she eating?")
    assert "*untuned:* I'm sorry." in page and "*corpus:* Oh no, what did the vet say?" in page
