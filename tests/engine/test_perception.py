from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from engine.embeddings import TextEncoder
from engine.emotion import EmotionClassifier
from engine.perception import Perceiver, set_name_words
from engine.types import Emotion, Media, MediaKind, UserTurn

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class FakeSticker:
    id: str
    emoji: str
    name: str
    emotion: Emotion
    emotion_description: str = ""
    content_description: str = ""
    recommendation: str = ""


class TinyLibrary:
    """Stands in for engine.stickers' library (not written yet): same two methods,
    matching pictures by their mean colour."""

    def __init__(self, stickers: list[tuple[FakeSticker, tuple[int, int, int]]]) -> None:
        self._by_id = {s.id: s for s, _ in stickers}
        self._colours = stickers

    def get(self, sticker_id: str) -> FakeSticker:
        return self._by_id[sticker_id]

    def match_image(self, image: Image.Image) -> tuple[FakeSticker, float] | None:
        mean = np.asarray(image.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)
        best, colour = min(self._colours, key=lambda sc: np.abs(mean - sc[1]).sum())
        distance = np.abs(mean - colour).sum() / (3 * 255)
        return (best, 1.0 - distance) if distance < 0.1 else None


SAD_CAT = FakeSticker("cat-cry", "😿", "crying cat", Emotion.sadness)
PARTY = FakeSticker("party", "🥳", "party face", Emotion.happiness)


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    return EmotionClassifier.load(TextEncoder())


@pytest.fixture(scope="module")
def library() -> TinyLibrary:
    return TinyLibrary([(SAD_CAT, (40, 60, 200)), (PARTY, (250, 200, 20))])


def turn(text: str = "", *media: Media) -> UserTurn:
    return UserTurn(platform="web", chat_id="c", user_id="u", message_id="m", text=text,
                    media=list(media))


def sticker(**kw: str) -> Media:
    return Media(kind=MediaKind.sticker, path=kw.pop("path", "s.webp"), format="webp", **kw)


def test_text_only(classifier: EmotionClassifier) -> None:
    p = Perceiver(classifier).perceive(turn("my dog died yesterday"))
    assert p.emotion == Emotion.sadness
    assert p.valence < 0
    assert "died" in p.cause_words
    assert p.media_descriptions == []


def test_sticker_alone_decides_by_its_emoji(classifier: EmotionClassifier) -> None:
    p = Perceiver(classifier).perceive(turn("", sticker(emoji="😭")))
    assert p.emotion == Emotion.sadness
    assert p.valence < -0.5
    assert p.media_descriptions == ["a sticker of a loudly crying face 😭 (sadness)"]


def test_feeling_sticker_outweighs_flat_text(classifier: EmotionClassifier) -> None:
    p = Perceiver(classifier).perceive(turn("ok", sticker(emoji="😡")))
    assert p.emotion == Emotion.anger


def test_text_and_sticker_that_agree_raise_confidence(classifier: EmotionClassifier) -> None:
    perceiver = Perceiver(classifier)
    alone = perceiver.perceive(turn("guess who got the job"))
    both = perceiver.perceive(turn("guess who got the job", sticker(emoji="🥳")))
    assert both.emotion == Emotion.happiness
    assert both.confidence > alone.confidence


def test_set_name_words_carry_emotion(classifier: EmotionClassifier) -> None:
    assert set_name_words("SadCryingCats_by_stickerbot") == "sad crying cats"
    p = Perceiver(classifier).perceive(turn("", sticker(set_name="SadCryingCats_by_stickerbot")))
    assert p.emotion == Emotion.sadness
    assert p.media_descriptions == ['a sticker from the set "sad crying cats" (sadness)']


def test_library_metadata_wins_and_unknown_ids_fall_back(classifier: EmotionClassifier,
                                                        library: TinyLibrary) -> None:
    perceiver = Perceiver(classifier, library)
    known = perceiver.perceive(turn("", sticker(library_id="cat-cry", emoji="😂")))
    assert known.emotion == Emotion.sadness
    assert known.media_descriptions == ["a sticker of a crying cat (sadness)"]
    unknown = perceiver.perceive(turn("", sticker(library_id="nope", emoji="😂")))
    assert unknown.emotion == Emotion.happiness


def test_image_matched_against_the_library(classifier: EmotionClassifier,
                                           library: TinyLibrary) -> None:
    image = Image.new("RGB", (64, 64), (248, 202, 25))
    media = Media(kind=MediaKind.image, path="photo.png", format="png")
    p = Perceiver(classifier, library).perceive(turn("", media), {"photo.png": image})
    assert p.emotion == Emotion.happiness
    assert p.media_descriptions == ["an image of a party face (happiness)"]


def test_unreadable_image_is_just_an_image(classifier: EmotionClassifier) -> None:
    media = Media(kind=MediaKind.image, path="x.png", format="png")
    p = Perceiver(classifier).perceive(turn("", media))
    assert p.emotion == Emotion.neutral and p.confidence == 0.0
    assert p.media_descriptions == ["an image"]


def test_ocr_reads_the_caption_on_a_sticker(classifier: EmotionClassifier) -> None:
    pytest.importorskip("rapidocr_onnxruntime")
    image = Image.new("RGBA", (512, 512), (0, 0, 0, 0))  # transparent, like a sticker
    font = ImageFont.truetype("DejaVuSans-Bold.ttf", 80)
    ImageDraw.Draw(image).text((40, 200), "SO  HAPPY", font=font, fill="black")
    media = Media(kind=MediaKind.sticker, path="cap.webp", format="webp")
    p = Perceiver(classifier, ocr=True).perceive(turn("", media), {"cap.webp": image})
    assert p.emotion == Emotion.happiness
    assert "HAPPY" in p.media_descriptions[0]
    assert p.valence > 0


def test_unknown_emoji_lets_the_picture_speak(classifier: EmotionClassifier,
                                              library: TinyLibrary) -> None:
    image = Image.new("RGB", (64, 64), (42, 58, 199))
    media = sticker(emoji="🦜", path="parrot.webp")
    perceiver = Perceiver(classifier, library)
    p = perceiver.perceive(turn("", media), {"parrot.webp": image})
    assert p.emotion == Emotion.sadness
    assert p.media_descriptions == ["a sticker of a crying cat (sadness)"]
    blind = perceiver.perceive(turn("", media))
    assert blind.media_descriptions == ["a sticker of a parrot 🦜"]
    assert blind.emotion == Emotion.neutral


def test_a_batch_reads_each_turn_as_alone(classifier: EmotionClassifier,
                                          library: TinyLibrary) -> None:
    perceiver = Perceiver(classifier, library)
    turns = [turn("my dog died yesterday"), turn("", sticker(emoji="😭")),
             turn("guess who got the job", sticker(emoji="🥳")), turn("")]
    batch = perceiver.perceive_batch(turns, [None] * len(turns))
    for one, alone in zip(batch, [perceiver.perceive(t) for t in turns], strict=True):
        assert one.emotion == alone.emotion and one.cause_words == alone.cause_words
        assert one.media_descriptions == alone.media_descriptions
        assert abs(one.valence - alone.valence) < 1e-4
