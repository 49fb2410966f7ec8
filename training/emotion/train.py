"""Fit the emotion classifier on training/emotion/data/train.jsonl only.

    python -m training.emotion.train [--out PATH]

Regularisation and the emoji nudge are both chosen by stratified 5-fold
cross-validation on the training set; the held-out set is never read here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from engine.embeddings import TextEncoder
from engine.emotion.classifier import (
    DEFAULT_WEIGHTS,
    EmotionClassifier,
    emoji_votes,
    vader_column,
)
from engine.types import Emotion
from training.emotion.dataset import TRAIN_PATH, load_jsonl

C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
EMOJI_GRID = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
NEGATION_GRID = (1.0, 0.5, 0.25, 0.1)
FOLDS = 5
SEED = 0


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=2000).fit(x, y)


def cross_validate(x: np.ndarray, y: np.ndarray, texts: list[str], c: float,
                   emoji_weights: tuple[float, ...]) -> dict[float, float]:
    """Mean CV accuracy for each emoji weight, sharing one fit per fold."""
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    correct = dict.fromkeys(emoji_weights, 0)
    for tr, te in folds.split(x, y):
        model = _fit(x[tr], y[tr], c)
        labels = [Emotion(str(label)) for label in model.classes_]
        logits = model.decision_function(x[te])
        votes = emoji_votes([texts[i] for i in te], labels)
        for w in emoji_weights:
            pred = model.classes_[np.argmax(logits + w * votes, axis=1)]
            correct[w] += int((pred == y[te]).sum())
    return {w: correct[w] / len(y) for w in emoji_weights}


def cross_validate_negation(encoder: TextEncoder, x: np.ndarray, y: np.ndarray,
                            texts: list[str], c: float, emoji_weight: float,
                            vader: bool) -> dict[float, float]:
    """Mean CV accuracy of the full predictor (occlusion and all) per negation factor."""
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    correct = dict.fromkeys(NEGATION_GRID, 0)
    for tr, te in folds.split(x, y):
        model = _fit(x[tr], y[tr], c)
        clf = EmotionClassifier(encoder, model.coef_, model.intercept_,
                                [Emotion(str(label)) for label in model.classes_],
                                emoji_weight, vader)
        fold_texts = [texts[i] for i in te]
        for (base, rows), text, gold in zip(clf.score(fold_texts), fold_texts, y[te],
                                            strict=True):
            for f in NEGATION_GRID:
                correct[f] += int(clf.prediction(text, base, rows, f).emotion.value == gold)
    return {f: correct[f] / len(y) for f in NEGATION_GRID}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args(argv)

    rows = load_jsonl(TRAIN_PATH)
    texts = [t for t, _ in rows]
    y = np.array([e.value for _, e in rows])
    encoder = TextEncoder()
    x = encoder.encode(texts)
    print(f"training texts: {len(rows)}, classes: {', '.join(sorted(set(y)))}")

    # Two feature sets compete: MiniLM alone, and MiniLM plus VADER's polarity.
    candidates = {"minilm": x, "minilm+vader": np.hstack([x, vader_column(texts)])}
    scores: dict[tuple[str, float], float] = {}
    for name, feats in candidates.items():
        for c in C_GRID:
            scores[name, c] = cross_validate(feats, y, texts, c, (0.0,))[0.0]
            print(f"  {name:<13} C={c:<6g} CV accuracy {scores[name, c]:.3f}")
    # Ties -> the plain features and stronger regularisation.
    best_name, best_c = max(scores, key=lambda k: (scores[k], k[0] == "minilm", -k[1]))
    x = candidates[best_name]

    by_w = cross_validate(x, y, texts, best_c, EMOJI_GRID)
    for w, acc in by_w.items():
        print(f"  emoji weight {w:<4g} CV accuracy {acc:.3f}")
    best_w = max(EMOJI_GRID, key=lambda w: (by_w[w], -w))  # only if it helps

    by_f = cross_validate_negation(encoder, x, y, texts, best_c, best_w,
                                   best_name == "minilm+vader")
    for f, acc in by_f.items():
        print(f"  negation factor {f:<4g} CV accuracy {acc:.3f}")
    best_f = max(NEGATION_GRID, key=lambda f: (by_f[f], f))  # ties -> off
    print(f"chosen features={best_name}, C={best_c:g}, emoji weight={best_w:g}, "
          f"negation factor={best_f:g}, CV accuracy {by_f[best_f]:.3f}")

    model = _fit(x, y, best_c)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, weights=model.coef_.astype(np.float32),
        bias=model.intercept_.astype(np.float32),
        labels=np.array([str(label) for label in model.classes_]),
        emoji_weight=np.float32(best_w), C=np.float32(best_c),
        vader_feature=np.bool_(best_name == "minilm+vader"), negation_factor=np.float32(best_f),
        cv_accuracy=np.float32(by_f[best_f]),
    )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
