from __future__ import annotations

from collections import Counter

import pytest

from engine.types import Emotion
from training.emotion.dataset import HELDOUT_PATH, TRAIN_PATH, load_jsonl, overlaps


def test_training_set_has_70_per_emotion() -> None:
    counts = Counter(e for _, e in load_jsonl(TRAIN_PATH))
    assert set(counts) == set(Emotion)
    assert min(counts.values()) >= 70


def test_heldout_set_has_30_per_emotion() -> None:
    counts = Counter(e for _, e in load_jsonl(HELDOUT_PATH))
    assert set(counts) == set(Emotion)
    assert min(counts.values()) >= 30


@pytest.mark.slow
def test_heldout_never_repeats_a_training_text(encoder) -> None:
    train = [t for t, _ in load_jsonl(TRAIN_PATH)]
    held = [t for t, _ in load_jsonl(HELDOUT_PATH)]
    assert overlaps(encoder, train, held) == []


@pytest.mark.slow
def test_overlap_check_catches_near_duplicates(encoder) -> None:
    train = ["my dog died yesterday", "what time does the store close?"]
    held = ["My dog died yesterday!!", "what time does the shop close", "i won the lottery"]
    found = {h for h, _, _ in overlaps(encoder, train, held)}
    assert "My dog died yesterday!!" in found
    assert "i won the lottery" not in found
