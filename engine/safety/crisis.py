"""Crisis recognition: does a turn suggest self-harm, suicide or harm to others?

A small head over MiniLM sentence embeddings (the same encoder as the emotion model),
fitted by `python -m engine.safety.train_crisis` on `engine/safety/data/crisis_train.jsonl`
and stored as a few kilobytes of numpy arrays. It reads the text together with the
sticker meaning perception found (emoji, set name, caption, the text on a sticker), in
the form the LLM sees it: "i'm done [sent a sticker of a coffin ⚰️]". The decision
threshold on P(crisis) is chosen by cross-validation for recall (missing a person in
crisis costs more than a calm answer to someone who was joking).

Long messages are read in overlapping word windows (MiniLM reads ~256 tokens), and the
most alarming window decides.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.embeddings import TextEncoder

LABELS = ("none", "self_harm", "harm_others")
CRISIS_LABELS = frozenset({"self_harm", "harm_others"})
DEFAULT_WEIGHTS = Path(__file__).with_name("crisis_weights.npz")
TRAIN_PATH = Path(__file__).parent / "data" / "crisis_train.jsonl"
# The held-out set lives with the tests so that nothing under engine/ fits on it.
HELDOUT_PATH = Path(__file__).parents[2] / "tests" / "data" / "crisis_heldout.jsonl"

WINDOW_WORDS = 48
WINDOW_STRIDE = 24
MAX_WINDOWS = 64  # 4000 characters are ~30 windows; anything longer is cut

# MiniLM maps emoji to [UNK], and Unicode names some of them oddly (🔪 is "HOCHO"): the
# emoji that carry crisis meaning get plain words beside them.
EMOJI_WORDS: dict[str, str] = {
    "🔪": "knife", "🔫": "gun", "💊": "pills", "⚰": "coffin", "🪦": "grave",
    "🩸": "blood", "💀": "skull", "☠": "skull and crossbones", "🪢": "rope",
    "💣": "bomb", "🗡": "dagger", "🪓": "axe", "🧨": "explosive", "💉": "syringe",
    "⛓": "chains", "🔥": "fire", "💔": "broken heart", "😭": "crying", "😢": "crying",
    "😞": "disappointed", "😔": "sad", "🥀": "wilted flower",
}


@dataclass(frozen=True)
class CrisisAssessment:
    """The verdict on one turn: a crisis label or None, and the probabilities behind it."""

    label: str | None  # "self_harm" | "harm_others" | None
    probabilities: dict[str, float]
    score: float  # P(any crisis class), compared with the threshold

    @property
    def is_crisis(self) -> bool:
        return self.label is not None


def crisis_input(text: str, media_descriptions: list[str] | None = None) -> str:
    """The text the classifier reads: the message plus "[sent ...]" for each picture
    (perception's descriptions), with words beside crisis emoji."""
    parts = [text.strip()] if text and text.strip() else []
    parts += [f"[sent {d}]" for d in media_descriptions or []]
    return with_emoji_words(" ".join(parts))


def with_emoji_words(text: str) -> str:
    out: list[str] = []
    for ch in text:
        out.append(ch)
        word = EMOJI_WORDS.get(ch)
        if word:
            out.append(f" ({word})")
    return unicodedata.normalize("NFC", "".join(out))


_WORDS = re.compile(r"\S+")


def windows(text: str, size: int = WINDOW_WORDS, stride: int = WINDOW_STRIDE) -> list[str]:
    """Overlapping word windows covering the text (one window when it is short)."""
    words = _WORDS.findall(text)
    if len(words) <= size:
        return [text.strip()] if text.strip() else []
    starts = list(range(0, max(1, len(words) - size) + 1, stride))
    if starts[-1] + size < len(words):
        starts.append(len(words) - size)
    return [" ".join(words[s:s + size]) for s in starts[:MAX_WINDOWS]]


def load_labelled(path: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                item = json.loads(line)
                label = str(item["label"])
                if label not in LABELS:
                    raise ValueError(f"{path}: unknown label {label!r}")
                rows.append((str(item["text"]), label))
    return rows


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class CrisisClassifier:
    def __init__(self, encoder: TextEncoder, weights: np.ndarray, bias: np.ndarray,
                 labels: list[str], threshold: float) -> None:
        if labels[0] != "none" or set(labels) != set(LABELS):
            raise ValueError(f"crisis labels must be {LABELS} with 'none' first, got {labels}")
        self.encoder = encoder
        self.weights = weights.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.labels = list(labels)
        self.threshold = float(threshold)

    @classmethod
    def load(cls, encoder: TextEncoder, path: Path | None = None) -> CrisisClassifier:
        path = Path(path) if path else DEFAULT_WEIGHTS
        if not path.exists():
            raise FileNotFoundError(f"crisis weights not found at {path}; run "
                                    "`python -m engine.safety.train_crisis`")
        with np.load(path, allow_pickle=False) as data:
            return cls(encoder, data["weights"], data["bias"],
                       [str(x) for x in data["labels"]], float(data["threshold"]))

    def probabilities_from(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities (order self.labels) for encoded inputs."""
        return _softmax(vectors @ self.weights.T + self.bias)

    def probabilities(self, inputs: list[str]) -> np.ndarray:
        """Per input: the probabilities of its most alarming window (rows: inputs)."""
        spans: list[tuple[int, int]] = []
        batch: list[str] = []
        for text in inputs:
            parts = windows(text) or [""]
            spans.append((len(batch), len(batch) + len(parts)))
            batch.extend(parts)
        probs = self.probabilities_from(self.encoder.encode(batch))
        out = np.zeros((len(inputs), len(self.labels)), dtype=np.float32)
        for i, (start, end) in enumerate(spans):
            rows = probs[start:end]
            out[i] = rows[int(np.argmin(rows[:, 0]))]  # the lowest P(none)
        return out

    def assess_inputs(self, inputs: list[str]) -> list[CrisisAssessment]:
        """Verdicts for texts already built with `crisis_input`."""
        live = [i for i, t in enumerate(inputs) if t.strip()]
        results = [CrisisAssessment(None, {label: float(label == "none")
                                           for label in self.labels}, 0.0) for _ in inputs]
        if not live:
            return results
        probs = self.probabilities([inputs[i] for i in live])
        for i, row in zip(live, probs, strict=True):
            results[i] = self.verdict(row)
        return results

    def verdict(self, row: np.ndarray) -> CrisisAssessment:
        score = float(1.0 - row[0])
        label = None
        if score >= self.threshold:
            label = self.labels[1 + int(np.argmax(row[1:]))]
        return CrisisAssessment(label, {lab: float(p) for lab, p in zip(self.labels, row,
                                                                         strict=True)}, score)

    def assess(self, text: str, media_descriptions: list[str] | None = None) -> CrisisAssessment:
        return self.assess_inputs([crisis_input(text, media_descriptions)])[0]
