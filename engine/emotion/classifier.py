"""Text -> one of the 7 SER30K emotions, with valence and the words that carry it.

MiniLM sentence embedding -> multinomial logistic regression, fitted by
`training.emotion.train` and stored as a few kilobytes of numpy arrays, so loading is
instant and prediction needs nothing beyond numpy. Emoji the lexicon knows nudge the
logits (MiniLM's vocabulary maps most emoji to [UNK], so it cannot see them itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.embeddings import TextEncoder
from engine.emotion.lexicon import find_emoji, normalise_emoji
from engine.types import Emotion

DEFAULT_WEIGHTS = Path(__file__).with_name("weights.npz")

# How pleasant each class reads on average; blended with VADER for the valence.
CLASS_VALENCE: dict[Emotion, float] = {
    Emotion.happiness: 0.75, Emotion.surprise: 0.2, Emotion.neutral: 0.0,
    Emotion.sadness: -0.75, Emotion.anger: -0.7, Emotion.fear: -0.6, Emotion.disgust: -0.6,
}
VADER_SHARE = 0.5
# A negated emotion word ("not happy") keeps this share of its class's probability;
# chosen by cross-validation in training.emotion.train (1.0 switches it off).
NEGATION_FACTOR = 0.25
NEGATION_WINDOW = 3
MAX_CAUSE_CANDIDATES = 60  # MiniLM reads ~256 tokens; words past that cannot matter

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?", re.IGNORECASE)
STOPWORDS = frozenset("""
a an the and or but if so of to in on at by for with from into about as is am are was were be
been being i me my mine myself we us our you your he him his she her it its they them their
this that these those there here what which who whom whose when where why how all any both each
few more most other some such only own same than too very s t can will just don should now do
does did doing have has had having would could might must shall may up down out off over under
again further then once im i'm ive i've id i'd ill i'll its it's thats that's dont don't didnt
didn't get got gets just really so like lol rn tbh ngl kinda pretty today yesterday tomorrow
tonight one still even also
""".split())
NEGATORS = frozenset("""
not no never don't dont didn't didnt doesn't doesnt isn't isnt wasn't wasnt aren't arent
ain't aint can't cant won't wont nothing nobody nor without hardly barely
""".split())
_CLAUSE = re.compile(r"[,.;:!?\n]+|\bbut\b|\bjust\b")


def is_negated(text: str, word: str) -> bool:
    """Whether `word` follows a negator within a few words of the same clause."""
    for clause in _CLAUSE.split(text.lower().replace("’", "'")):
        tokens = _WORD.findall(clause)
        for i, token in enumerate(tokens):
            if token == word and NEGATORS.intersection(tokens[max(0, i - NEGATION_WINDOW):i]):
                return True
    return False


@dataclass
class EmotionPrediction:
    emotion: Emotion
    probabilities: dict[Emotion, float]
    confidence: float
    valence: float
    cause_words: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_compound(text: str) -> float:
    """VADER's compound score in [-1, 1]; it reads emoji and negation itself."""
    return float(_vader().polarity_scores(text)["compound"]) if text.strip() else 0.0


def vader_column(texts: list[str]) -> np.ndarray:
    """(n, 1) VADER compound scores: a polarity cue, negation included, that MiniLM
    embeddings blur ("happy" and "not happy" embed close together)."""
    return np.array([[vader_compound(t)] for t in texts], dtype=np.float32)


def emoji_votes(texts: list[str], labels: list[Emotion]) -> np.ndarray:
    """(n, classes): the share of each text's known emoji that point at each class."""
    index = {label: i for i, label in enumerate(labels)}
    votes = np.zeros((len(texts), len(labels)), dtype=np.float32)
    for row, text in enumerate(texts):
        for _, emotion, _ in find_emoji(text):
            votes[row, index[emotion]] += 1.0
        total = votes[row].sum()
        if total:
            votes[row] /= total
    return votes


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _candidates(text: str) -> list[str]:
    """Words and emoji worth occluding, in reading order."""
    spans: list[str] = []
    seen: set[str] = set()
    for m in _WORD.finditer(text):
        word = m.group(0).lower()
        if word in STOPWORDS or word in seen or len(word) < 2 or word.isdigit():
            continue
        seen.add(word)
        spans.append(word)
        if len(spans) >= MAX_CAUSE_CANDIDATES:
            return spans
    for emoji, _, _ in find_emoji(text):
        if emoji not in seen:
            seen.add(emoji)
            spans.append(emoji)
    return spans


def _occlude(text: str, token: str) -> str:
    """The text without every occurrence of the token (a word may repeat)."""
    if _WORD.fullmatch(token):
        return re.sub(rf"(?<![\w']){re.escape(token)}(?![\w'])", " ", text, flags=re.IGNORECASE)
    return normalise_emoji(text).replace(token, " ")


class EmotionClassifier:
    def __init__(self, encoder: TextEncoder, weights: np.ndarray, bias: np.ndarray,
                 labels: list[Emotion], emoji_weight: float, vader_feature: bool = False,
                 negation_factor: float = NEGATION_FACTOR) -> None:
        self.encoder = encoder
        self.weights = weights.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.labels = labels
        self.emoji_weight = float(emoji_weight)
        self.vader_feature = vader_feature
        self.negation_factor = float(negation_factor)

    @classmethod
    def load(cls, encoder: TextEncoder, path: Path | None = None) -> EmotionClassifier:
        path = Path(path) if path else DEFAULT_WEIGHTS
        if not path.exists():
            raise FileNotFoundError(
                f"emotion weights not found at {path}; run `python -m training.emotion.train`")
        with np.load(path, allow_pickle=False) as data:
            labels = [Emotion(str(x)) for x in data["labels"]]
            return cls(encoder, data["weights"], data["bias"], labels,
                       float(data["emoji_weight"]), bool(data["vader_feature"]),
                       float(data["negation_factor"]))

    # --- core ------------------------------------------------------------------
    def probabilities_from(self, vectors: np.ndarray, texts: list[str]) -> np.ndarray:
        """Class probabilities for already-encoded texts (label order = self.labels)."""
        if self.vader_feature:
            vectors = np.hstack([vectors, vader_column(texts)])
        logits = vectors @ self.weights.T + self.bias
        if self.emoji_weight:
            logits = logits + self.emoji_weight * emoji_votes(texts, self.labels)
        return _softmax(logits)

    def score(self, texts: list[str]) -> list[tuple[np.ndarray, list[tuple[str, np.ndarray]]]]:
        """Per non-empty text: class probabilities, and those with each word occluded.

        One encode covers the texts and all their occluded variants."""
        batch = list(texts)
        owners: list[tuple[int, str]] = []
        for k, text in enumerate(texts):
            for token in _candidates(text):
                batch.append(_occlude(text, token))
                owners.append((k, token))
        probs = self.probabilities_from(self.encoder.encode(batch), batch)
        rows: list[list[tuple[str, np.ndarray]]] = [[] for _ in texts]
        for j, (k, token) in enumerate(owners):
            rows[k].append((token, probs[len(texts) + j]))
        return [(probs[k], rows[k]) for k in range(len(texts))]

    def predict(self, texts: list[str]) -> list[EmotionPrediction]:
        live = [i for i, t in enumerate(texts) if t.strip()]
        results = [self._empty() for _ in texts]
        for i, (base, rows) in zip(live, self.score([texts[i] for i in live]), strict=True):
            results[i] = self.prediction(texts[i], base, rows)
        return results

    def predict_one(self, text: str) -> EmotionPrediction:
        return self.predict([text])[0]

    # --- helpers ---------------------------------------------------------------
    def prediction(self, text: str, probs: np.ndarray, occluded: list[tuple[str, np.ndarray]],
                   negation_factor: float | None = None) -> EmotionPrediction:
        """Turn `score`'s output for one text into a prediction."""
        factor = self.negation_factor if negation_factor is None else negation_factor
        top = int(np.argmax(probs))
        causes = self._causes(self.labels[top], float(probs[top]), top, occluded)
        # MiniLM embeds "not happy" close to "happy": when the word that carries the
        # class is negated, the class loses most of its weight.
        if factor < 1.0 and causes and is_negated(text, causes[0]):
            probs = probs.copy()
            probs[top] *= factor
            probs /= probs.sum()
            old_top, top = top, int(np.argmax(probs))
            if top != old_top:
                causes = self._causes(self.labels[top], float(probs[top]), top, occluded)
        emotion = self.labels[top]
        prob_map = {label: float(p) for label, p in zip(self.labels, probs, strict=True)}
        class_valence = sum(CLASS_VALENCE[label] * p for label, p in prob_map.items())
        valence = VADER_SHARE * vader_compound(text) + (1 - VADER_SHARE) * class_valence
        return EmotionPrediction(
            emotion=emotion, probabilities=prob_map, confidence=float(probs[top]),
            valence=float(np.clip(valence, -1.0, 1.0)), cause_words=causes,
        )

    @staticmethod
    def _causes(emotion: Emotion, p_top: float, top: int,
                occluded: list[tuple[str, np.ndarray]]) -> list[str]:
        # A neutral message has no emotional words to point at.
        if emotion == Emotion.neutral or not occluded:
            return []
        drops = sorted(((p_top - float(p[top]), token) for token, p in occluded), reverse=True)
        best = drops[0][0]
        if best <= 0.01:
            return []
        # Keep runners-up only when they matter nearly as much as the strongest word.
        return [token for drop, token in drops[:3] if drop >= 0.4 * best]

    def _empty(self) -> EmotionPrediction:
        uniform = 1.0 / len(self.labels)
        return EmotionPrediction(
            emotion=Emotion.neutral, probabilities={label: uniform for label in self.labels},
            confidence=0.0, valence=0.0, cause_words=[],
        )
