"""Known lines: how much nearer a turn is to labelled risk than to labelled ordinary talk.

The fine-tuned crisis model learns the wording of the sittings it was trained on: lines
by a new writer that mean the same thing in other words slip under its thresholds. The
plain MiniLM sentence embedding (not fine-tuned) generalises across wording better, so
beside the model the classifier asks which labelled training turns a turn is nearest to:

    margin = mean cosine to its K nearest risk lines - mean cosine to its K nearest
             ordinary lines

once for any risk (added to the model's concern, for the check-in) and once for clear
risk (self-harm or harm to others, added to the model's crisis score), for turns of at
least MIN_WORDS words. A turn much like
"i keep looking at the bridge on my way home" lifts both; "this commute is killing me"
sits among the idioms of the ordinary lines and lifts neither.

The bank is the training split's turns (their text, not their context), embedded by
`python -m training.safety.calibrate` and stored as int8 vectors beside the model
(engine/safety/crisis_model/known_lines.npz); the weights of the margins and the
thresholds were chosen there on lines no bank line came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

K_NEAREST = 3
# "I'm done.", "yes", "not for long" mean what the turns before them make them mean: the
# fine-tuned model reads them with those turns; the known lines, which read the turn
# alone, stay out of turns this short.
MIN_WORDS = 4
# Labels as stored in the bank: the index in engine.safety.crisis.LABELS.
ORDINARY, PASSIVE, SELF_HARM, HARM_OTHERS = 0, 1, 2, 3
SCALE = 127.0  # unit vectors stored as int8


@dataclass(frozen=True)
class Margins:
    risk: float  # nearer to any risk than to ordinary lines (> 0) or the reverse (< 0)
    crisis: float  # the same for clear risk: self-harm or harm to others


NO_MARGINS = Margins(0.0, 0.0)


class KnownLines:
    def __init__(self, vectors: np.ndarray, labels: np.ndarray, k: int = K_NEAREST) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.labels = np.asarray(labels)
        self.k = k
        self._ordinary = self.labels == ORDINARY
        self._crisis = (self.labels == SELF_HARM) | (self.labels == HARM_OTHERS)
        if min(self._ordinary.sum(), self._crisis.sum(), (~self._ordinary).sum()) < k:
            raise ValueError(f"a known-lines bank needs at least {k} lines of each kind")

    @classmethod
    def load(cls, path: Path) -> KnownLines:
        data = np.load(path)
        return cls(data["vectors"].astype(np.float32) / SCALE, data["labels"], int(data["k"]))

    def save(self, path: Path) -> None:
        np.savez_compressed(path, vectors=quantised(self.vectors),
                            labels=self.labels.astype(np.uint8), k=np.int64(self.k))

    def _nearest(self, sims: np.ndarray, mask: np.ndarray) -> np.ndarray:
        part = sims[:, mask]
        return np.partition(part, part.shape[1] - self.k, axis=1)[:, -self.k:].mean(axis=1)

    def margins(self, vectors: np.ndarray) -> list[Margins]:
        """Margins for unit vectors of turns (the base MiniLM's sentence embeddings)."""
        if len(vectors) == 0:
            return []
        sims = np.asarray(vectors, dtype=np.float32) @ self.vectors.T
        ordinary = self._nearest(sims, self._ordinary)
        risk = self._nearest(sims, ~self._ordinary) - ordinary
        crisis = self._nearest(sims, self._crisis) - ordinary
        return [Margins(float(r), float(c)) for r, c in zip(risk, crisis, strict=True)]


def quantised(vectors: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(vectors) * SCALE), -127, 127).astype(np.int8)
