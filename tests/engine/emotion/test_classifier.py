from __future__ import annotations

import time

import numpy as np
import pytest

from engine.emotion import EmotionClassifier
from engine.types import Emotion
from training.emotion.dataset import HELDOUT_PATH, load_jsonl

pytestmark = pytest.mark.slow


def test_heldout_accuracy_is_well_above_chance(classifier: EmotionClassifier) -> None:
    rows = load_jsonl(HELDOUT_PATH)
    texts = [t for t, _ in rows]
    probs = classifier.probabilities_from(classifier.encoder.encode(texts), texts)
    predicted = [classifier.labels[i] for i in np.argmax(probs, axis=1)]
    accuracy = np.mean([p == gold for p, (_, gold) in zip(predicted, rows, strict=True)])
    # Chance is 1/7; `python -m training.emotion.evaluate` measured 0.884.
    assert accuracy >= 0.85


@pytest.mark.parametrize(("text", "emotion"), [
    ("we just got married and i'm over the moon", Emotion.happiness),
    ("my grandmother passed away last night", Emotion.sadness),
    ("the company scammed me and nobody will help, i'm furious", Emotion.anger),
    ("there is someone knocking on my window at 3am, i'm terrified", Emotion.fear),
    ("ew there's a hair in my burger", Emotion.disgust),
    ("wait, you're moving to canada?? since when", Emotion.surprise),
    ("can you send me the address of the venue", Emotion.neutral),
])
def test_clear_examples_get_their_class(classifier: EmotionClassifier, text: str,
                                        emotion: Emotion) -> None:
    pred = classifier.predict_one(text)
    assert pred.emotion == emotion
    assert pred.confidence == max(pred.probabilities.values())
    assert abs(sum(pred.probabilities.values()) - 1.0) < 1e-4


def test_negation_turns_valence_negative(classifier: EmotionClassifier) -> None:
    happy = classifier.predict_one("i am happy with how it went")
    negated = classifier.predict_one("i am not happy at all with how it went")
    assert happy.valence > 0.3
    assert negated.valence < 0
    # MiniLM embeds "not happy" near "happy", so the class can lag; its weight must drop.
    assert negated.probabilities[Emotion.happiness] < 0.6 * happy.probabilities[Emotion.happiness]
    assert classifier.predict_one("not happy at all").emotion != Emotion.happiness


def test_valence_sign(classifier: EmotionClassifier) -> None:
    assert classifier.predict_one("this is the best day of my life").valence > 0.3
    assert classifier.predict_one("i feel so lonely and worthless").valence < -0.3
    assert abs(classifier.predict_one("the meeting is at 4").valence) < 0.3


def test_emoji_shift_the_prediction(classifier: EmotionClassifier) -> None:
    plain = classifier.predict_one("well that happened")
    crying = classifier.predict_one("well that happened 😭😭")
    assert crying.probabilities[Emotion.sadness] > plain.probabilities[Emotion.sadness]
    assert crying.emotion == Emotion.sadness


def test_cause_words_point_at_the_emotional_word(classifier: EmotionClassifier) -> None:
    pred = classifier.predict_one("my dog died yesterday")
    assert pred.emotion == Emotion.sadness
    assert pred.cause_words[0] == "died"
    assert 1 <= len(pred.cause_words) <= 3
    fear = classifier.predict_one("i am so scared of the surgery on friday")
    assert "scared" in fear.cause_words or "surgery" in fear.cause_words
    assert classifier.predict_one("what time is the train").cause_words == []


def test_empty_text_is_neutral_with_low_confidence(classifier: EmotionClassifier) -> None:
    for text in ("", "   \n"):
        pred = classifier.predict_one(text)
        assert pred.emotion == Emotion.neutral
        assert pred.valence == 0.0
        assert pred.confidence < 0.2
        assert pred.cause_words == []


def test_very_long_input_is_handled_quickly(classifier: EmotionClassifier) -> None:
    text = ("i am so angry at the landlord for the broken heating " * 200)[:10_000]
    start = time.perf_counter()
    pred = classifier.predict_one(text)
    assert time.perf_counter() - start < 30
    assert pred.emotion == Emotion.anger
    assert -1.0 <= pred.valence <= 1.0


def test_batch_matches_single_and_keeps_order(classifier: EmotionClassifier) -> None:
    texts = ["ew gross", "", "i got the job!!"]
    batch = classifier.predict(texts)
    assert [p.emotion for p in batch] == [classifier.predict_one(t).emotion for t in texts]
    assert batch[1].emotion == Emotion.neutral and batch[1].confidence == 0.0


def test_weights_load_fast(encoder) -> None:
    start = time.perf_counter()
    loaded = EmotionClassifier.load(encoder)
    assert time.perf_counter() - start < 0.5
    assert set(loaded.labels) == set(Emotion)
