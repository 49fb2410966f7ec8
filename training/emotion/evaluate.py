"""Score the emotion classifier on the held-out set (never used for fitting).

    python -m training.emotion.evaluate [--weights PATH] [--plot confusion.png]

Prints accuracy, macro-F1, per-class precision/recall, the confusion matrix and
valence sign agreement, after checking that no held-out text repeats a training text.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from engine.embeddings import TextEncoder
from engine.emotion.classifier import EmotionClassifier, EmotionPrediction
from engine.plots import plot_confusion
from engine.types import NEGATIVE_EMOTIONS, Emotion
from training.emotion.dataset import HELDOUT_PATH, TRAIN_PATH, load_jsonl, require_disjoint

LABELS = list(Emotion)


@dataclass
class Report:
    accuracy: float
    macro_f1: float
    precision: dict[Emotion, float]
    recall: dict[Emotion, float]
    confusion: np.ndarray  # rows: true, columns: predicted, order LABELS
    valence_agreement: float
    valence_rows: int


def expected_sign(emotion: Emotion) -> int:
    """+1 happiness, -1 the negative classes, 0 where the sign is open (neutral, surprise)."""
    if emotion == Emotion.happiness:
        return 1
    return -1 if emotion in NEGATIVE_EMOTIONS else 0


def score(gold: list[Emotion], preds: list[EmotionPrediction]) -> Report:
    predicted = [p.emotion for p in preds]
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, predicted, labels=LABELS, zero_division=0)
    signed = [(expected_sign(g), p.valence) for g, p in zip(gold, preds, strict=True)
              if expected_sign(g) != 0]
    agree = sum(1 for s, v in signed if s * v > 0)
    return Report(
        accuracy=float(accuracy_score(gold, predicted)), macro_f1=float(f1.mean()),
        precision={e: float(precision[i]) for i, e in enumerate(LABELS)},
        recall={e: float(recall[i]) for i, e in enumerate(LABELS)},
        confusion=confusion_matrix(gold, predicted, labels=LABELS),
        valence_agreement=agree / max(len(signed), 1), valence_rows=len(signed),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="write a confusion-matrix PNG")
    args = parser.parse_args(argv)

    encoder = TextEncoder()
    train = load_jsonl(TRAIN_PATH)
    heldout = load_jsonl(HELDOUT_PATH)
    require_disjoint(encoder, [t for t, _ in train], [t for t, _ in heldout])

    classifier = EmotionClassifier.load(encoder, args.weights)
    start = time.perf_counter()
    preds = classifier.predict([t for t, _ in heldout])
    elapsed = time.perf_counter() - start
    report = score([e for _, e in heldout], preds)

    print(f"accuracy  {report.accuracy:.3f}")
    print(f"macro-F1  {report.macro_f1:.3f}")
    print(f"{'class':<10} precision  recall")
    for e in LABELS:
        print(f"{e.value:<10} {report.precision[e]:9.3f}  {report.recall[e]:6.3f}")
    print("confusion (rows true, columns predicted): " + " ".join(e.value[:4] for e in LABELS))
    for e, row in zip(LABELS, report.confusion, strict=True):
        print(f"  {e.value:<10}" + "".join(f"{n:5d}" for n in row))
    print(f"valence sign agreement {report.valence_agreement:.3f} "
          f"({report.valence_rows} texts with a definite sign)")
    print(f"predict with cause words: {elapsed:.1f} s for {len(heldout)} texts")
    if args.plot:
        plot_confusion(report.confusion, [e.value for e in LABELS],
                       "Emotion classifier, held-out set", args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
