"""Known lines: a turn near labelled risk lifts the crisis score, one near ordinary talk
does not; the bank survives its int8 file; the verdict adds the weighted margins."""

from __future__ import annotations

import numpy as np
import pytest

from engine.safety.crisis import LABELS, CrisisClassifier, Thresholds
from engine.safety.known_lines import (
    HARM_OTHERS,
    ORDINARY,
    PASSIVE,
    SELF_HARM,
    KnownLines,
    Margins,
)
from tests.factories import committed_crisis_classifier


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def crisis_classifier_parts(encoder):
    committed = committed_crisis_classifier(str(encoder.model_path))
    return committed.model, committed.tokenizer


@pytest.fixture()
def bank() -> KnownLines:
    # Ordinary lines point along x, passive along y, clear risk along z.
    vectors = [unit(1, 0.1 * i, 0) for i in range(4)] + [unit(0.1 * i, 1, 0) for i in range(3)]
    vectors += [unit(0, 0.1 * i, 1) for i in range(4)]
    labels = [ORDINARY] * 4 + [PASSIVE] * 3 + [SELF_HARM] * 3 + [HARM_OTHERS]
    return KnownLines(np.stack(vectors), np.array(labels), k=2)


def test_margins_say_which_lines_a_turn_is_nearer(bank) -> None:
    near_risk, near_passive, near_ordinary = bank.margins(
        np.stack([unit(0.1, 0, 1), unit(0.1, 1, 0.05), unit(1, 0, 0.1)]))
    assert near_risk.risk > 0.5 and near_risk.crisis > 0.5
    assert near_passive.risk > 0.5 and near_passive.crisis < near_passive.risk
    assert near_ordinary.risk < -0.5 and near_ordinary.crisis < -0.5
    assert bank.margins(np.zeros((0, 3), np.float32)) == []


def test_the_bank_survives_its_file(bank, tmp_path) -> None:
    bank.save(tmp_path / "known.npz")
    loaded = KnownLines.load(tmp_path / "known.npz")
    turns = np.stack([unit(0.3, 0.2, 1), unit(1, 0.5, 0)])
    for before, after in zip(bank.margins(turns), loaded.margins(turns), strict=True):
        assert after.risk == pytest.approx(before.risk, abs=0.02)
        assert after.crisis == pytest.approx(before.crisis, abs=0.02)


def test_a_bank_needs_lines_of_each_kind() -> None:
    with pytest.raises(ValueError, match="at least"):
        KnownLines(np.stack([unit(1, 0, 0)] * 5), np.array([ORDINARY] * 5), k=3)


def test_the_verdict_adds_the_weighted_margins(crisis_classifier_parts) -> None:
    model, tokenizer = crisis_classifier_parts
    classifier = CrisisClassifier(model, tokenizer,
                                  Thresholds(crisis=1.0, check_in=0.8, known_weight=4.0,
                                             known_weight_check_in=4.0))
    # The model alone is unsure: half its weight on passive, a little on self-harm.
    row = np.array([0.3, 0.4, 0.25, 0.05], dtype=np.float32)
    assert dict(zip(LABELS, row, strict=True))["none"] == pytest.approx(0.3)
    near_risk = classifier.verdict(row, None, Margins(risk=0.15, crisis=0.2))
    assert near_risk.is_crisis and near_risk.label == "self_harm"
    assert near_risk.score == pytest.approx(0.3 + 4.0 * 0.2)
    near_ordinary = classifier.verdict(row, None, Margins(risk=-0.1, crisis=-0.2))
    assert not near_ordinary.is_crisis and not near_ordinary.check_in
    assert near_ordinary.concern == pytest.approx(0.7 - 0.4)
    # A plainly named risk is a crisis whatever the margins say.
    named = classifier.verdict(row, "self_harm", Margins(risk=-0.3, crisis=-0.3))
    assert named.is_crisis
    # A wish to be dead named plainly is asked about, however near the risk lines.
    wish = classifier.verdict(row, "passive", Margins(risk=0.5, crisis=0.5))
    assert not wish.is_crisis and wish.check_in


def test_known_lines_need_their_encoder(crisis_classifier_parts, bank) -> None:
    model, tokenizer = crisis_classifier_parts
    with pytest.raises(ValueError, match="encoder"):
        CrisisClassifier(model, tokenizer, Thresholds(1.0, 0.8), known=bank)
