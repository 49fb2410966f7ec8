"""Perceive a turn: the person's emotion from their text and the pictures they sent.

Each picture yields evidence from the best source available, in this order: the
sticker library's own metadata, the platform's emoji and sticker-set name, a visual
match against the library, text read off the image (OCR), or nothing but "an image".
Text and picture evidence are then pooled, each weighted by its confidence.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np
from PIL import Image

from engine.emotion.classifier import CLASS_VALENCE, EmotionClassifier, EmotionPrediction
from engine.emotion.lexicon import emoji_emotion, find_emoji
from engine.types import Emotion, Media, MediaKind, Perception, UserTurn

# How much each kind of picture evidence is trusted, relative to its own confidence.
# The platform emoji is chosen by the sticker's author for that very sticker; a set
# name describes a whole pack, so it counts for less.
EMOJI_CONFIDENCE = 0.8
LIBRARY_CONFIDENCE = 0.9
SET_NAME_SHARE = 0.5
# Plain text ("ok", "see you") expresses no feeling, so it should not outvote a
# sticker that does.
NEUTRAL_TEXT_SHARE = 0.5


class StickerInfo(Protocol):
    """The sticker metadata perception reads (engine.stickers' Sticker has these)."""

    @property
    def emoji(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def emotion(self) -> Emotion: ...

    @property
    def content_description(self) -> str: ...


class StickerLookup(Protocol):
    """What perception needs from the sticker library."""

    def get(self, sticker_id: str) -> StickerInfo: ...

    def match_image(self, image: Image.Image) -> tuple[StickerInfo, float] | None: ...


@dataclass
class Evidence:
    """One source's opinion about the emotion."""

    probabilities: dict[Emotion, float]
    valence: float
    weight: float
    cause_words: list[str] = field(default_factory=list)


def _peaked(emotion: Emotion, confidence: float) -> dict[Emotion, float]:
    """A distribution with `confidence` on one class and the rest spread evenly."""
    rest = (1.0 - confidence) / (len(Emotion) - 1)
    return {e: (confidence if e == emotion else rest) for e in Emotion}


def _from_prediction(pred: EmotionPrediction, share: float = 1.0) -> Evidence:
    return Evidence(dict(pred.probabilities), pred.valence, pred.confidence * share,
                    list(pred.cause_words))


def set_name_words(set_name: str) -> str:
    """'CryingCats_by_stickerbot' -> 'crying cats'."""
    name = re.sub(r"_by_\w+$", "", set_name)
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return re.sub(r"[_\-.\d]+", " ", name).strip().lower()


def emoji_name(emoji: str) -> str:
    """Unicode's name for the first character: '😭' -> 'loudly crying face'."""
    try:
        return unicodedata.name(emoji[0]).lower()
    except (ValueError, IndexError):
        return "emoji"


def _article(phrase: str) -> str:
    return f"an {phrase}" if phrase[:1] in "aeiou" else f"a {phrase}"


class Perceiver:
    def __init__(self, classifier: EmotionClassifier, library: StickerLookup | None = None,
                 ocr: bool = False) -> None:
        self.classifier = classifier
        self.library = library
        self.ocr = ocr

    @cached_property
    def _ocr_engine(self) -> Any:  # ~3 s to load, so only when a picture needs it
        from rapidocr_onnxruntime import RapidOCR

        return RapidOCR()

    def read_text(self, image: Image.Image) -> str:
        """Text printed on the image, in reading order ('' when none)."""
        rgb = image.convert("RGBA")
        flat = Image.new("RGB", rgb.size, "white")
        flat.paste(rgb, mask=rgb.getchannel("A"))  # transparent pixels are black underneath
        result, _ = self._ocr_engine(np.asarray(flat))
        if not result:
            return ""
        return " ".join(str(item[1]) for item in result).strip()

    # --- per picture -----------------------------------------------------------
    def _media_evidence(self, media: Media,
                        images: dict[str, Image.Image]) -> tuple[str, list[Evidence]]:
        kind = "sticker" if media.kind == MediaKind.sticker else "image"
        if media.library_id and self.library is not None:
            try:
                sticker = self.library.get(media.library_id)
            except KeyError:
                sticker = None
            if sticker is not None:
                return self._sticker_evidence(kind, sticker, LIBRARY_CONFIDENCE)

        evidence: list[Evidence] = []
        description = _article(kind)
        emotion: Emotion | None = None
        if media.emoji:
            description += f" of {_article(emoji_name(media.emoji))} {media.emoji}"
            hit = emoji_emotion(media.emoji)
            if hit is not None:
                emotion, valence = hit
                evidence.append(Evidence(_peaked(emotion, EMOJI_CONFIDENCE), valence,
                                         EMOJI_CONFIDENCE, [find_emoji(media.emoji)[0][0]]))
        words = set_name_words(media.set_name) if media.set_name else ""
        if words:
            description += f' from the set "{words}"'
            pred = self.classifier.predict_one(words)
            if pred.emotion != Emotion.neutral:
                evidence.append(_from_prediction(pred, SET_NAME_SHARE))
                emotion = emotion or pred.emotion
        if evidence:
            return f"{description} ({emotion.value})" if emotion else description, evidence
        # An unknown emoji or a neutral set name says what it is, not how it feels:
        # let the picture itself speak, and keep this description as the fallback.

        image = images.get(media.path)
        if image is not None and self.library is not None:
            match = self.library.match_image(image)
            if match is not None:
                sticker, score = match
                return self._sticker_evidence(kind, sticker, float(np.clip(score, 0.0, 1.0)))
        if image is not None and self.ocr:
            text = self.read_text(image)
            if text:
                pred = self.classifier.predict_one(text)
                label = "" if pred.emotion == Emotion.neutral else f" ({pred.emotion.value})"
                return f'{_article(kind)} with the text "{text}"{label}', [_from_prediction(pred)]
        return description, []

    @staticmethod
    def _sticker_evidence(kind: str, sticker: StickerInfo,
                          confidence: float) -> tuple[str, list[Evidence]]:
        emotion = Emotion(sticker.emotion)
        what = (sticker.name or sticker.content_description or "a picture").strip().rstrip(".")
        what = what[0].lower() + what[1:] if what else what
        hit = emoji_emotion(sticker.emoji or "")
        valence = hit[1] if hit and hit[0] == emotion else CLASS_VALENCE[emotion]
        causes = [sticker.emoji] if sticker.emoji else []
        description = f"{_article(kind)} of {_article(what)} ({emotion.value})"
        return description, [Evidence(_peaked(emotion, confidence), valence, confidence, causes)]

    # --- the turn --------------------------------------------------------------
    def perceive(self, turn: UserTurn,
                 images: dict[str, Image.Image] | None = None) -> Perception:
        return self.perceive_batch([turn], [images])[0]

    def perceive_batch(self, turns: list[UserTurn],
                       images: list[dict[str, Image.Image] | None]) -> list[Perception]:
        """`perceive` for several turns: their texts go through the emotion model in one
        pass (a batch of concurrent chats costs one encode, not one each)."""
        texts = [" ".join([t.text] + [m.caption for m in t.media if m.caption]).strip()
                 for t in turns]
        predictions = self.classifier.predict(texts)
        return [self._perceive(turn, prediction if text else None, pictures or {})
                for turn, text, prediction, pictures
                in zip(turns, texts, predictions, images, strict=True)]

    def _perceive(self, turn: UserTurn, text_pred: EmotionPrediction | None,
                  images: dict[str, Image.Image]) -> Perception:
        pooled: list[Evidence] = []
        if text_pred is not None:
            share = NEUTRAL_TEXT_SHARE if text_pred.emotion == Emotion.neutral else 1.0
            pooled.append(_from_prediction(text_pred, share))
        descriptions: list[str] = []
        for media in turn.media:
            description, evidence = self._media_evidence(media, images)
            descriptions.append(description)
            pooled.extend(evidence)
        return _combine(pooled, descriptions)


def _combine(pooled: list[Evidence], descriptions: list[str]) -> Perception:
    total = sum(e.weight for e in pooled)
    if total <= 0:
        return Perception(emotion=Emotion.neutral, valence=0.0, confidence=0.0,
                          media_descriptions=descriptions)
    probs = {emotion: sum(e.weight * e.probabilities.get(emotion, 0.0) for e in pooled) / total
             for emotion in Emotion}
    emotion = max(probs, key=lambda e: probs[e])
    valence = sum(e.weight * e.valence for e in pooled) / total
    # Cause words come from the sources that agree with the verdict, strongest first.
    causes: list[str] = []
    for e in sorted(pooled, key=lambda e: -e.weight):
        if max(e.probabilities, key=lambda k: e.probabilities[k]) == emotion:
            causes.extend(w for w in e.cause_words if w not in causes)
    return Perception(emotion=emotion, valence=float(np.clip(valence, -1.0, 1.0)),
                      confidence=float(np.clip(probs[emotion], 0.0, 1.0)),
                      cause_words=causes[:3], media_descriptions=descriptions)
