"""The caption-sticker composer: art plus a bold outlined caption, 512 px RGBA."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest
from PIL import Image

from engine.pegs import composer as composer_module
from engine.pegs.composer import CAPTION_FONTS, CaptionComposer, caption_for
from engine.stickers import Sticker, StickerLibrary, render_emoji
from engine.types import Emotion

SIZE = 512


@pytest.fixture(scope="module")
def small_library(tmp_path_factory: pytest.TempPathFactory) -> StickerLibrary:
    """One real rendered sticker stored the way the default pack stores it."""
    library = StickerLibrary(tmp_path_factory.mktemp("lib"))
    library.add(Sticker(id="test-cry", pack="test", emoji="😭", name="loudly crying face",
                        emotion=Emotion.sadness, emotion_description="Deep sadness.",
                        content_description="A face crying streams of tears.",
                        recommendation="Use it for heavy news."), render_emoji("😭"))
    return library


@pytest.fixture(scope="module")
def composer(small_library: StickerLibrary) -> CaptionComposer:
    return CaptionComposer(small_library)


def _rgba(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGBA"), dtype=np.int16)


def _caption_pixels(a: np.ndarray) -> np.ndarray:
    """Opaque, near-white pixels: the caption's fill."""
    return (a[..., 3] > 200) & (a[..., :3].min(axis=-1) > 230)


def _coloured_pixels(a: np.ndarray) -> np.ndarray:
    """Opaque, saturated pixels: emoji art (the caption is only white and near-black)."""
    spread = a[..., :3].max(axis=-1) - a[..., :3].min(axis=-1)
    return (a[..., 3] > 200) & (spread > 60)


def _check_sticker(image: Image.Image) -> np.ndarray:
    assert image.size == (SIZE, SIZE) and image.mode == "RGBA"
    a = _rgba(image)
    assert all(a[y, x, 3] == 0 for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)))
    return a


def test_emoji_with_caption(composer: CaptionComposer) -> None:
    a = _check_sticker(composer.compose("😢", "Sending hugs", emotion=Emotion.sadness))
    lower, upper = a[SIZE * 2 // 3:], a[: SIZE * 2 // 3]
    assert _caption_pixels(lower).sum() > 500
    assert _coloured_pixels(upper).sum() > 5000
    assert _coloured_pixels(lower).sum() < _coloured_pixels(upper).sum() // 10


def test_library_id_with_caption(composer: CaptionComposer) -> None:
    a = _check_sticker(composer.compose("test-cry", "Oh no", emotion=None))
    assert _caption_pixels(a[SIZE * 2 // 3:]).sum() > 300
    assert _coloured_pixels(a[: SIZE * 2 // 3]).sum() > 5000


def test_empty_caption_is_just_the_art(composer: CaptionComposer) -> None:
    plain = composer.compose("😢", "", emotion=Emotion.sadness)
    _check_sticker(plain)
    art = render_emoji("😢")
    assert np.abs(_rgba(plain) - _rgba(art)).mean() < 1.0
    # Emoji-only captions have nothing the caption font can draw: art alone as well.
    assert np.array_equal(_rgba(composer.compose("😢", "😢👍🏽", emotion=None)), _rgba(plain))


def test_long_caption_wraps_inside_the_canvas(composer: CaptionComposer) -> None:
    text = "this caption is much too long to ever fit on one single line of a sticker"
    a = _check_sticker(composer.compose("🙂", text, emotion=Emotion.neutral))
    ink = np.argwhere(a[..., 3] > 0)
    assert ink[:, 0].max() < SIZE - 4 and ink[:, 1].min() > 2 and ink[:, 1].max() < SIZE - 3
    unbroken = "Supercalifragilisticexpialidocious" * 3
    _check_sticker(composer.compose("🙂", unbroken, emotion=None))


@pytest.mark.parametrize("caption", [
    "مرحبا بك يا صديقي",  # right-to-left
    "这是一个很长的中文标题没有空格",  # CJK, no spaces, no glyphs in DejaVu
    "שלום 👨‍👩‍👧 friend",  # Hebrew with a ZWJ family
    "\u200f\u200d\ufe0f",  # only format characters
    "x" * 500,
])
def test_odd_captions_never_raise(composer: CaptionComposer, caption: str) -> None:
    _check_sticker(composer.compose("😮", caption, emotion=Emotion.surprise))


def test_zwj_emoji_art(composer: CaptionComposer) -> None:
    a = _check_sticker(composer.compose("👩‍💻", "Back to work", emotion=None))
    assert _coloured_pixels(a).sum() > 3000


def test_unknown_art_falls_back_to_the_emotion_emoji(composer: CaptionComposer) -> None:
    a = _check_sticker(composer.compose("not-an-id", "Hey", emotion=Emotion.happiness))
    assert _coloured_pixels(a).sum() > 3000
    with pytest.raises(ValueError, match="not-an-id"):
        composer.compose("not-an-id", "Hey", emotion=None)


def test_composer_without_library() -> None:
    _check_sticker(CaptionComposer().compose("😊", "Yay", emotion=None))


@pytest.mark.parametrize(("text", "expected"), [
    ("Oh no, I'm so sorry to hear that.", "Oh no"),
    ("I'm really happy for you and your family today!", "I'm really happy for"),
    ("\n\nHey there\nsecond line", "Hey there"),
    ("https://example.com 🙂 ... wow!!", "wow"),
])
def test_caption_for_first_clause(text: str, expected: str) -> None:
    assert caption_for(text, Emotion.neutral) == expected


@pytest.mark.parametrize("text", ["", "😢😢", "...", "   "])
def test_caption_for_falls_back_to_an_emotion_phrase(text: str) -> None:
    for emotion in Emotion:
        caption = caption_for(text, emotion)
        assert caption and len(caption.split()) <= 4
    assert caption_for(text, None)


@pytest.mark.parametrize("text", [
    "one two three four five six seven", "这是一个很长的中文句子没有空格也没有标点符号",
    "a" * 200, "Well well well, what do we have here",
])
def test_caption_for_is_short(text: str) -> None:
    caption = caption_for(text, Emotion.happiness)
    assert 0 < len(caption.split()) <= 4 and len(caption) <= 28


def test_caption_font_is_dejavu_bold() -> None:
    # Debian's fonts-dejavu-core; without it captions fall back to Pillow's default.
    assert composer_module._font_file() == CAPTION_FONTS[0]
    assert CAPTION_FONTS[0].name == "DejaVuSans-Bold.ttf"
