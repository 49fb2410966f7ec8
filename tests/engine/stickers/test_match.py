"""Recognising copies of library stickers (match_image).

Measured over the 203 default stickers (Twemoji art, fingerprint.MATCH_THRESHOLD = 0.96):
the most alike pair of different emoji, person pouting vs person frowning, scores 0.954;
copies (JPEG q50 on white, JPEG on black at 256 px, WEBP 128 px, PNG 100 px, RGB
without alpha) score 0.999 at the median, with 99.8% >= 0.96.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.stickers import MATCH_THRESHOLD, Sticker, StickerLibrary, render_emoji
from engine.types import Emotion


def reencode(img: Image.Image, fmt: str, size: int, background: tuple | None = None,
             **kw) -> Image.Image:
    if background is not None:
        flat = Image.new("RGBA", img.size, background + (255,))
        flat.alpha_composite(img.convert("RGBA"))
        img = flat.convert("RGB")
    buf = io.BytesIO()
    img.resize((size, size), Image.Resampling.BICUBIC).save(buf, fmt, **kw)
    buf.seek(0)
    return Image.open(buf).copy()


@pytest.mark.parametrize("emoji", ["😢", "🤗", "🫂", "😠", "🌋", "☕"])
def test_reencoded_copies_are_recognised(library: StickerLibrary, emoji: str) -> None:
    sticker = next(s for s in library if s.emoji == emoji)
    with Image.open(library.webp_file(sticker.id)) as original:
        original = original.convert("RGBA")
    copies = [
        reencode(original, "JPEG", 256, (255, 255, 255), quality=70),
        reencode(original, "JPEG", 384, (0, 0, 0), quality=85),
        reencode(original, "WEBP", 200, quality=60),
        reencode(original, "PNG", 160),
    ]
    for copy in copies:
        match = library.match_image(copy)
        assert match is not None and match[0].id == sticker.id, (emoji, copy.mode, match)
        assert match[1] >= MATCH_THRESHOLD


def test_a_photo_like_picture_matches_nothing(library: StickerLibrary) -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        blobs = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        photo = Image.fromarray(blobs).resize((640, 480), Image.Resampling.BICUBIC)
        assert library.match_image(reencode(photo, "JPEG", 480, quality=80)) is None
    assert library.match_image(Image.new("RGB", (300, 300), (250, 250, 250))) is None


def test_different_emoji_never_match_each_other(library: StickerLibrary) -> None:
    worst = (0.0, "")
    for sticker in library:
        with Image.open(library.png_file(sticker.id)) as img:
            (first, own), (other, score) = library.similar_images(img, k=2)
        assert first.id == sticker.id and own > 0.999
        worst = max(worst, (score, f"{sticker.emoji} ~ {other.emoji}"))
    assert worst[0] < MATCH_THRESHOLD, worst


def test_a_sticker_missing_from_the_library_is_not_mistaken(tmp_path: Path) -> None:
    lib = StickerLibrary(tmp_path)
    # Near look-alikes of what will be asked: the closest pairs in the default pack.
    for emoji in ("😡", "😃", "😦", "🙂"):
        lib.add(Sticker(id=f"x-{ord(emoji[0]):x}", pack="t", emoji=emoji, name=emoji,
                        emotion=Emotion.neutral, emotion_description="-",
                        content_description="-", recommendation="-"), render_emoji(emoji))
    lib.save()
    reloaded = StickerLibrary.load(tmp_path)  # the fingerprints come back from disk
    for emoji in ("😠", "😀", "😧", "🥲"):
        assert reloaded.match_image(reencode(render_emoji(emoji), "PNG", 256)) is None
    assert reloaded.match_image(reencode(render_emoji("😡"), "JPEG", 256, (255, 255, 255)))
