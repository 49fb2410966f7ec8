"""The danger bank: built from the training file's training split only, its threshold
chosen on the lines it does not hold, and loaded beside the crisis model."""

from __future__ import annotations

import numpy as np

from engine.safety.crisis import DEFAULT_MODEL_DIR
from engine.safety.danger import DANGER_LINES_FILE, DangerLines
from training.safety.danger_lines import split
from training.safety.data import load_danger_train


def test_the_split_is_fixed_and_holds_out_a_fifth() -> None:
    items = load_danger_train()
    train, validation = split(items)
    assert len(train) + len(validation) == len(items)
    assert 0.15 < len(validation) / len(items) < 0.25
    assert split(items) == (train, validation)
    assert {i["label"] for i in validation} == {"danger", "none"}


def test_the_committed_bank_holds_the_training_split_only(encoder) -> None:
    bank = DangerLines.load(DEFAULT_MODEL_DIR / DANGER_LINES_FILE)
    train, validation = split(load_danger_train())
    assert len(bank.vectors) == len(train)
    assert int(bank.labels.sum()) == sum(i["label"] == "danger" for i in train)
    # A held-out line is not in the bank: its nearest bank line is not itself.
    held = encoder.encode([validation[0]["text"]])
    assert float((held @ bank.vectors.T).max()) < 0.99


def test_a_turn_like_the_danger_lines_clears_the_threshold_and_small_talk_does_not(
        encoder) -> None:
    from engine.safety.known_lines import KnownLines

    bank = DangerLines.load(DEFAULT_MODEL_DIR / DANGER_LINES_FILE)
    known = KnownLines.load(DEFAULT_MODEL_DIR / "known_lines.npz")
    margins = bank.margins(encoder.encode([
        "he took my phone and my keys and says i'm not leaving this flat tonight",
        "we're making pancakes this morning, the kids are so excited"]), known.vectors)
    assert margins[0] >= bank.threshold > margins[1]
    assert np.isfinite(bank.threshold)
