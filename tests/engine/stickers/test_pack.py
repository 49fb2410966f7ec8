"""The default emoji pack: size, coverage, images and idempotent rebuilds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from engine.stickers import (
    DEFAULT_PACK,
    EmojiRenderError,
    LibraryMissingError,
    StickerLibrary,
    build_default_pack,
    emoji_id,
    render_emoji,
)
from engine.stickers.build import DEFAULT_PACK_FILE
from engine.stickers.render import load_emoji_font
from engine.types import Emotion


def test_pack_is_large_and_covers_every_emotion(library: StickerLibrary) -> None:
    assert len(library) >= 170
    counts = Counter(s.emotion for s in library)
    for emotion in Emotion:
        assert counts[emotion] >= 14, (emotion, counts)
    assert len({s.id for s in library}) == len(library)
    assert all(s.pack == DEFAULT_PACK and "OFL-1.1" in s.license for s in library)


def test_pack_metadata_is_complete() -> None:
    entries = json.loads(DEFAULT_PACK_FILE.read_text(encoding="utf-8"))
    assert len({e["emoji"] for e in entries}) == len(entries)
    for e in entries:
        for field in ("name", "emotion_description", "content_description",
                      "recommendation"):
            assert len(e[field].strip()) >= 3, (e["emoji"], field)
        assert e["recommendation"].startswith("Use it"), e["emoji"]
        Emotion(e["emotion"])


def test_comforting_stickers_are_in_the_pack(library: StickerLibrary) -> None:
    emoji = {s.emoji for s in library}
    for wanted in ("🤗", "🫂", "❤️‍🩹", "💪", "☕", "🥰", "🙏", "💖", "🍀", "🥺", "😢", "😿"):
        assert wanted in emoji


def test_every_image_is_a_512_px_non_blank_sticker(library: StickerLibrary) -> None:
    for sticker in library:
        with Image.open(library.webp_file(sticker.id)) as webp:
            assert webp.format == "WEBP" and webp.size == (512, 512)
        with Image.open(library.png_file(sticker.id)) as png:
            assert png.size == (512, 512)
            box = png.getchannel("A").getbbox()
            # fit_square crops to the figure: it must fill one side of the square.
            assert box is not None and max(box[2] - box[0], box[3] - box[1]) >= 500, sticker.id
            # Not blank: even the thinnest sticker (an exclamation mark) covers > 10%.
            assert png.getchannel("A").histogram()[0] < 512 * 512 * 0.9, sticker.id


def test_ids_are_stable_and_filesystem_safe() -> None:
    assert emoji_id("😢") == "noto-1f622"
    assert emoji_id("❤️‍🩹") == "noto-2764-200d-1fa79"
    assert emoji_id("❤️") == emoji_id("❤")


def test_rendering_refuses_what_the_font_cannot_draw() -> None:
    with pytest.raises(EmojiRenderError, match="blank"):
        render_emoji("\ue000")  # private use: no glyph
    with pytest.raises(EmojiRenderError, match="single glyph"):
        render_emoji("🧌\u200d🧌")  # not a real ZWJ sequence
    assert render_emoji("👍🏽").size == (512, 512)


def test_missing_font_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(EmojiRenderError, match="fonts-noto-color-emoji"):
        load_emoji_font(tmp_path / "NotoColorEmoji.ttf")


def test_missing_library_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(LibraryMissingError, match="stickerbot stickers build"):
        StickerLibrary.load(tmp_path)


def test_rebuilding_does_not_duplicate(pack_root: Path, library: StickerLibrary,
                                       encoder) -> None:
    again = build_default_pack(pack_root, encoder, show_progress=False)
    assert len(again) == len(library)
    lines = (pack_root / "library.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(library)
