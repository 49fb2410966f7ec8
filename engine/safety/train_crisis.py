"""Fit the crisis classifier on engine/safety/data/crisis_train.jsonl only.

    python -m engine.safety.train_crisis [--out PATH] [--target-recall 0.95]

The regularisation C is chosen by stratified 5-fold cross-validation (macro-F1); the
threshold on P(crisis) is the highest one whose out-of-fold recall of crisis messages
(self-harm and harm to others together) reaches the target, so recall is favoured over
precision. The held-out set is never read here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from engine.embeddings import TextEncoder
from engine.safety.crisis import DEFAULT_WEIGHTS, LABELS, TRAIN_PATH, crisis_input, load_labelled

C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
FOLDS = 5
SEED = 0
DEFAULT_TARGET_RECALL = 0.95


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, y)


def _ordered(model: LogisticRegression) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias in LABELS order ('none' first)."""
    order = [list(model.classes_).index(label) for label in LABELS]
    return model.coef_[order], model.intercept_[order]


def out_of_fold(x: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    """Out-of-fold probabilities (n, 3) in LABELS order."""
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    probs = np.zeros((len(y), len(LABELS)), dtype=np.float64)
    for tr, te in folds.split(x, y):
        model = _fit(x[tr], y[tr], c)
        w, b = _ordered(model)
        logits = x[te] @ w.T + b
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        probs[te] = e / e.sum(axis=1, keepdims=True)
    return probs


def choose_threshold(probs: np.ndarray, y: np.ndarray, target: float) -> tuple[float, float,
                                                                              float]:
    """The highest threshold on P(crisis) with recall >= target: (t, recall, precision)."""
    crisis = y != "none"
    score = 1.0 - probs[:, 0]
    best = (0.5, 0.0, 0.0)
    for t in np.round(np.arange(0.95, 0.0, -0.01), 2):
        flagged = score >= t
        recall = float((flagged & crisis).sum() / max(crisis.sum(), 1))
        precision = float((flagged & crisis).sum() / max(flagged.sum(), 1))
        best = (float(t), recall, precision)
        if recall >= target:
            return best
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--target-recall", type=float, default=DEFAULT_TARGET_RECALL)
    args = parser.parse_args(argv)

    rows = load_labelled(TRAIN_PATH)
    texts = [crisis_input(t) for t, _ in rows]
    y = np.array([label for _, label in rows])
    counts = {label: int((y == label).sum()) for label in LABELS}
    print(f"training texts: {len(rows)} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    x = TextEncoder().encode(texts)

    scores: dict[float, float] = {}
    oof: dict[float, np.ndarray] = {}
    for c in C_GRID:
        oof[c] = out_of_fold(x, y, c)
        pred = np.array(LABELS)[np.argmax(oof[c], axis=1)]
        scores[c] = float(f1_score(y, pred, average="macro"))
        print(f"  C={c:<6g} CV macro-F1 {scores[c]:.3f}")
    best_c = max(C_GRID, key=lambda c: (scores[c], -c))
    threshold, recall, precision = choose_threshold(oof[best_c], y, args.target_recall)
    print(f"chosen C={best_c:g}; threshold on P(crisis) {threshold:.2f}: CV crisis recall "
          f"{recall:.3f}, precision {precision:.3f} (target recall {args.target_recall})")

    model = _fit(x, y, best_c)
    weights, bias = _ordered(model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, weights=weights.astype(np.float32), bias=bias.astype(np.float32),
        labels=np.array(LABELS), threshold=np.float32(threshold), C=np.float32(best_c),
        cv_recall=np.float32(recall), cv_precision=np.float32(precision),
        cv_macro_f1=np.float32(scores[best_c]))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
