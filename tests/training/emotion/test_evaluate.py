"""The held-out report's numbers on a case small enough to count by hand."""

from __future__ import annotations

from engine.emotion.classifier import EmotionPrediction
from engine.types import Emotion
from training.emotion.evaluate import LABELS, score

H, S, N = Emotion.happiness, Emotion.sadness, Emotion.neutral


def predicted(emotion: Emotion, valence: float) -> EmotionPrediction:
    return EmotionPrediction(emotion=emotion, probabilities={}, confidence=1.0, valence=valence)


def test_report_counts_each_class_and_the_valence_sign() -> None:
    gold = [H, H, S, S, N]
    preds = [predicted(H, 0.8), predicted(S, -0.2), predicted(S, -0.5), predicted(S, -0.1),
             predicted(H, 0.3)]
    report = score(gold, preds)
    assert report.accuracy == 3 / 5
    assert (report.precision[H], report.recall[H]) == (1 / 2, 1 / 2)
    assert (report.precision[S], report.recall[S]) == (2 / 3, 1.0)
    assert (report.precision[N], report.recall[N]) == (0.0, 0.0)  # never right: 0, no error
    # F1: happiness 0.5, sadness 0.8, the five other classes 0.
    assert abs(report.macro_f1 - 1.3 / len(LABELS)) < 1e-9
    row = {e: i for i, e in enumerate(LABELS)}
    assert report.confusion[row[H], row[S]] == 1 and report.confusion[row[N], row[H]] == 1
    assert int(report.confusion.sum()) == 5
    # Signs: happiness wants > 0, sadness < 0, neutral has none; 3 of 4 agree.
    assert (report.valence_agreement, report.valence_rows) == (3 / 4, 4)
