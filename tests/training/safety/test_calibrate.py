"""Calibration: the known-lines weight and thresholds come from lines no weight and no
known line came from, keep the false alarms within their bounds there, and the weight
kept is the one that catches the most risk by the new writer."""

from __future__ import annotations

import numpy as np
import pytest

from engine.safety.crisis import CrisisClassifier, known_text
from tests.factories import committed_crisis_classifier
from training.safety.calibrate import (
    MAX_FALSE_CRISIS_CALIBRATION,
    calibrate,
    caught,
    known_lines,
)
from training.safety.data import (
    CALIBRATION_PATH,
    in_validation,
    load_all_train_turns,
    load_train_turns,
)
from training.safety.train import MAX_FALSE_CRISIS_HARD, is_everyday


@pytest.fixture(scope="module")
def calibrated(encoder):
    turns = load_all_train_turns()
    bank = [t for t in turns if not in_validation(t)][::20]  # a sample keeps it quick
    validation = [t for t in turns if in_validation(t) and t.label == "none"][::6]
    new_writer = load_train_turns(CALIBRATION_PATH)[::4]
    committed = committed_crisis_classifier(str(encoder.model_path))
    classifier = CrisisClassifier(committed.model, committed.tokenizer, committed.thresholds,
                                  known_lines(encoder, bank), encoder)
    held = validation + new_writer
    return classifier, held, calibrate(classifier, held, weights=(0.0, 4.0, 8.0))


def test_no_known_line_comes_from_the_calibration_turns() -> None:
    turns = load_all_train_turns()
    assert not any(t.source == CALIBRATION_PATH.name for t in turns)
    assert len(load_train_turns(CALIBRATION_PATH)) >= 500


def test_the_scores_false_alarms_stay_within_their_bounds(calibrated) -> None:
    classifier, held, best = calibrated
    thresholds = best["thresholds"]
    probs = classifier.probabilities([t.pair for t in held])
    margins = classifier.known_margins([known_text(t.context, t.text) for t in held])
    score = probs[:, 2] + probs[:, 3] + thresholds.known_weight * np.array(
        [m.crisis for m in margins])
    fired = score >= thresholds.crisis
    new_negative = np.array([t.label == "none" and t.source == CALIBRATION_PATH.name
                             for t in held])
    hard = np.array([t.label == "none" and t.source != CALIBRATION_PATH.name
                     and not is_everyday(t) for t in held])
    assert fired[new_negative].mean() <= MAX_FALSE_CRISIS_CALIBRATION
    assert fired[hard].mean() <= MAX_FALSE_CRISIS_HARD


def test_the_weights_kept_catch_the_most_new_risk(calibrated) -> None:
    _, _, best = calibrated
    assert caught(best) == max(caught(t) for t in best["tried"])
    assert len(best["tried"]) == 9  # each weight for each margin
    without = next(t for t in best["tried"] if t["thresholds"].known_weight == 0.0
                   and t["thresholds"].known_weight_check_in == 0.0)
    assert caught(best) >= caught(without)
