"""Score the crisis classifier on the held-out set (never used for fitting).

    python -m engine.safety.evaluate_crisis [--weights PATH] [--plot crisis.png]

Prints precision, recall and F1 per class and for "any crisis" (self-harm and harm to
others against none), and the confusion matrix, after checking that no held-out text
repeats a training text; `--plot` writes the confusion matrix as a PNG.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.embeddings import TextEncoder
from engine.emotion.dataset import require_disjoint
from engine.plots import plot_confusion
from engine.safety.crisis import (
    HELDOUT_PATH,
    LABELS,
    TRAIN_PATH,
    CrisisClassifier,
    crisis_input,
    load_labelled,
)


@dataclass
class CrisisReport:
    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]
    crisis_precision: float  # any crisis label vs none
    crisis_recall: float
    crisis_f1: float
    confusion: np.ndarray  # rows true, columns predicted, order LABELS
    n: int


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def score(gold: list[str], predicted: list[str]) -> CrisisReport:
    idx = {label: i for i, label in enumerate(LABELS)}
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    for g, p in zip(gold, predicted, strict=True):
        confusion[idx[g], idx[p]] += 1
    tp = np.diag(confusion).astype(float)
    precision = tp / np.maximum(confusion.sum(axis=0), 1)
    recall = tp / np.maximum(confusion.sum(axis=1), 1)
    is_gold = np.array([g != "none" for g in gold])
    is_pred = np.array([p != "none" for p in predicted])
    hits = float((is_gold & is_pred).sum())
    c_precision = hits / max(int(is_pred.sum()), 1)
    c_recall = hits / max(int(is_gold.sum()), 1)
    return CrisisReport(
        precision={label: float(precision[i]) for i, label in enumerate(LABELS)},
        recall={label: float(recall[i]) for i, label in enumerate(LABELS)},
        f1={label: _f1(float(precision[i]), float(recall[i])) for i, label in enumerate(LABELS)},
        crisis_precision=c_precision, crisis_recall=c_recall,
        crisis_f1=_f1(c_precision, c_recall), confusion=confusion, n=len(gold))


def evaluate(classifier: CrisisClassifier, rows: list[tuple[str, str]]) -> CrisisReport:
    verdicts = classifier.assess_inputs([crisis_input(text) for text, _ in rows])
    return score([label for _, label in rows], [v.label or "none" for v in verdicts])


def print_report(report: CrisisReport, threshold: float) -> None:
    print(f"threshold on P(crisis): {threshold:.2f}")
    print(f"{'class':<12} precision  recall     F1")
    for label in LABELS:
        print(f"{label:<12} {report.precision[label]:9.3f}  {report.recall[label]:6.3f}  "
              f"{report.f1[label]:5.3f}")
    print(f"{'any crisis':<12} {report.crisis_precision:9.3f}  {report.crisis_recall:6.3f}  "
          f"{report.crisis_f1:5.3f}")
    print("confusion (rows true, columns predicted): " + " ".join(LABELS))
    for label, row in zip(LABELS, report.confusion, strict=True):
        print(f"  {label:<12}" + "".join(f"{n:6d}" for n in row))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="write a confusion-matrix PNG")
    args = parser.parse_args(argv)

    encoder = TextEncoder()
    train = load_labelled(TRAIN_PATH)
    heldout = load_labelled(HELDOUT_PATH)
    require_disjoint(encoder, [t for t, _ in train], [t for t, _ in heldout])

    classifier = CrisisClassifier.load(encoder, args.weights)
    started = time.perf_counter()
    report = evaluate(classifier, heldout)
    elapsed = time.perf_counter() - started
    print_report(report, classifier.threshold)
    print(f"{elapsed:.1f} s for {len(heldout)} texts")
    if args.plot:
        plot_confusion(report.confusion, LABELS, "Crisis classifier, held-out set", args.plot,
                       cmap="Reds")
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
