"""The hand-written emotion data sets (data/ beside this file) and the check that keeps
them apart. The trainer reads only train.jsonl; heldout.jsonl is for the evaluation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from engine.embeddings import TextEncoder
from engine.types import Emotion

DATA_DIR = Path(__file__).parent / "data"
TRAIN_PATH = DATA_DIR / "train.jsonl"
HELDOUT_PATH = DATA_DIR / "heldout.jsonl"
NEAR_DUPLICATE_COSINE = 0.95


def load_jsonl(path: Path) -> list[tuple[str, Emotion]]:
    rows: list[tuple[str, Emotion]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                item = json.loads(line)
                rows.append((str(item["text"]), Emotion(item["emotion"])))
    return rows


def _squash(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def overlaps(encoder: TextEncoder, train: list[str], heldout: list[str],
             threshold: float = NEAR_DUPLICATE_COSINE) -> list[tuple[str, str, float]]:
    """Held-out texts that repeat a training text: equal once squashed, or MiniLM
    cosine >= threshold. Returns (held-out text, training text, cosine)."""
    if not train or not heldout:
        return []
    sims = encoder.encode(heldout) @ encoder.encode(train).T
    squashed = {_squash(t): t for t in train}
    found: list[tuple[str, str, float]] = []
    for i, text in enumerate(heldout):
        j = int(np.argmax(sims[i]))
        if _squash(text) in squashed:
            found.append((text, squashed[_squash(text)], 1.0))
        elif sims[i, j] >= threshold:
            found.append((text, train[j], float(sims[i, j])))
    return found


def require_disjoint(encoder: TextEncoder, train: list[str], heldout: list[str]) -> None:
    """Print the held-out set's overlap with the training set; stop when there is any
    (a held-out score on seen texts would be a number we did not measure)."""
    dupes = overlaps(encoder, train, heldout)
    print(f"held-out texts: {len(heldout)}; near-duplicates of training texts: {len(dupes)}")
    for held, seen, cos in dupes:
        print(f"  {cos:.3f}  {held!r} ~ {seen!r}")
    if dupes:
        raise SystemExit("held-out set overlaps the training set; fix the data first")
