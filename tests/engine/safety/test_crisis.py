"""The crisis classifier on its held-out set, on sticker meaning, and the crisis reply."""

from __future__ import annotations

import json

import pytest

from engine.emotion.dataset import overlaps
from engine.safety.crisis import (
    HELDOUT_PATH,
    TRAIN_PATH,
    CrisisClassifier,
    crisis_input,
    load_labelled,
    windows,
)
from engine.safety.evaluate_crisis import evaluate, main, score
from engine.safety.resources import DEFAULT_RESOURCES, CrisisResources

# Floors under the measured held-out figures (recall 0.987, precision 0.781 when the
# weights were fitted), so a retrained head that loses recall fails here.
MIN_CRISIS_RECALL = 0.95
MIN_CRISIS_PRECISION = 0.75
MIN_CLASS_RECALL = 0.9


@pytest.fixture(scope="module")
def crisis(encoder) -> CrisisClassifier:
    return CrisisClassifier.load(encoder)


def test_the_labelled_sets_are_big_diverse_and_apart(encoder) -> None:
    train, heldout = load_labelled(TRAIN_PATH), load_labelled(HELDOUT_PATH)
    assert len(train) + len(heldout) >= 500
    for rows in (train, heldout):
        labels = [label for _, label in rows]
        assert {"none", "self_harm", "harm_others"} == set(labels)
        assert sum("[sent " in text for text, _ in rows) >= 10  # sticker-only and mixed
    assert overlaps(encoder, [t for t, _ in train], [t for t, _ in heldout]) == []


def test_held_out_recall_and_precision_clear_their_floors(crisis) -> None:
    report = evaluate(crisis, load_labelled(HELDOUT_PATH))
    assert report.crisis_recall >= MIN_CRISIS_RECALL, report
    assert report.crisis_precision >= MIN_CRISIS_PRECISION, report
    assert report.recall["self_harm"] >= MIN_CLASS_RECALL
    assert report.recall["harm_others"] >= MIN_CLASS_RECALL


def test_score_counts_what_it_is_given() -> None:
    report = score(["none", "self_harm", "harm_others", "self_harm"],
                   ["self_harm", "self_harm", "none", "harm_others"])
    assert report.crisis_recall == pytest.approx(2 / 3)  # the third crisis was missed
    assert report.crisis_precision == pytest.approx(2 / 3)  # one false alarm
    assert report.recall["self_harm"] == pytest.approx(0.5)


@pytest.mark.parametrize("text, media, label", [
    ("I just want to sleep and never wake up", [], "self_harm"),
    ("everyone would be better off if I wasn't here anymore", [], "self_harm"),
    ("I'm going to stab my brother when he gets home", [], "harm_others"),
    ("can't take it anymore", ["a sticker of a coffin ⚰️ (sadness)"], "self_harm"),
    ("", ['a sticker with the text "I want to die"'], "self_harm"),
    ("for him tonight", ["a sticker of a hocho 🔪"], "harm_others"),
])
def test_crises_in_text_and_sticker_meaning_are_recognised(crisis, text, media, label) -> None:
    verdict = crisis.assess(text, media)
    assert verdict.label == label, verdict


@pytest.mark.parametrize("text, media", [
    ("this homework is killing me", []),
    ("I could murder a pizza", []),
    ("hello, how are you today?", []),
    ("I passed my exam!", ["a sticker of a party popper 🎉 (happiness)"]),
    ("", ["a sticker of a grinning face 😀 (happiness)"]),
])
def test_everyday_words_that_sound_violent_are_not_a_crisis(crisis, text, media) -> None:
    assert crisis.assess(text, media).label is None


def test_a_crisis_at_the_end_of_a_long_message_is_found(crisis) -> None:
    filler = "Today I went to the shop and bought bread, milk and some apples. " * 40
    assert len(windows(filler + "I want to kill myself tonight.")) > 1
    assert crisis.assess(filler + " I want to kill myself tonight.").label == "self_harm"
    assert crisis.assess(filler).label is None


def test_crisis_input_puts_words_beside_crisis_emoji() -> None:
    assert crisis_input("ok", ["a sticker of a hocho 🔪"]) == \
        "ok [sent a sticker of a hocho 🔪 (knife)]"
    assert crisis_input("", []) == ""


def test_empty_input_is_no_crisis(crisis) -> None:
    assert crisis.assess("   ").label is None


def test_evaluate_prints_figures_and_writes_a_plot(tmp_path, capsys) -> None:
    main(["--plot", str(tmp_path / "crisis.png")])
    out = capsys.readouterr().out
    assert "any crisis" in out and "near-duplicates of training texts: 0" in out
    assert (tmp_path / "crisis.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the crisis reply ------------------------------------------------------------------

def test_the_default_reply_points_to_international_help() -> None:
    text = CrisisResources.load().reply("self_harm")
    assert "findahelpline.com" in text and "emergency" in text
    assert "{" not in text


@pytest.mark.parametrize("language, country, expected", [
    ("en", "US", "988"), ("en", "GB", "116 123"), ("de-DE", "DE", "0800 111 0 111"),
    ("fr", "FR", "3114"), ("pt-BR", "", "findahelpline.com"),
])
def test_resources_follow_language_and_country(language, country, expected) -> None:
    resources = CrisisResources.load()
    for kind in ("self_harm", "harm_others"):
        assert expected in resources.reply(kind, language, country)
    assert "Notruf" in resources.reply("self_harm", "de", "DE")
    assert resources.reply("self_harm", "pt-BR").startswith("I'm really glad")  # English


def test_a_custom_resources_file_replaces_the_bundled_one(tmp_path) -> None:
    data = json.loads(DEFAULT_RESOURCES.read_text())
    data["countries"]["ZZ"] = {"self_harm": ["the test line"], "harm_others": ["the test line"],
                               "emergency": "the test number"}
    path = tmp_path / "resources.json"
    path.write_text(json.dumps(data))
    assert "the test line" in CrisisResources.load(path).reply("self_harm", "en", "zz")
    del data["templates"]["en"]["self_harm"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="needs"):
        CrisisResources.load(path)
