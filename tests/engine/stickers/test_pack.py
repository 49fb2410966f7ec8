"""The default emoji pack: size, coverage, Twemoji vector art, stable ids and idempotent
rebuilds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
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
    render_twemoji,
)
from engine.stickers.build import (
    DEFAULT_LICENSE,
    DEFAULT_PACK_FILE,
    TWEMOJI_LICENSE,
    _up_to_date,
    default_pack_entries,
)
from engine.stickers.render import load_emoji_font, twemoji_svg
from engine.types import Emotion

FROZEN_IDS = Path(__file__).parents[2] / "data" / "default_pack_ids.txt"


def test_pack_is_large_and_covers_every_emotion(library: StickerLibrary) -> None:
    assert len(library) >= 170
    counts = Counter(s.emotion for s in library)
    for emotion in Emotion:
        assert counts[emotion] >= 14, (emotion, counts)
    assert len({s.id for s in library}) == len(library)
    assert all(s.pack == DEFAULT_PACK and s.license == DEFAULT_LICENSE for s in library)


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


def test_logged_sticker_ids_and_files_are_kept(library: StickerLibrary) -> None:
    """Transcripts and training sessions name stickers by id and by "noto-emoji/<id>.png"."""
    lines = FROZEN_IDS.read_text(encoding="utf-8").splitlines()
    frozen = [line for line in lines if line and not line.startswith("#")]
    assert len(frozen) == 203
    assert set(frozen) <= {emoji_id(e["emoji"]) for e in default_pack_entries()}
    for sticker_id in frozen:
        assert library.get(sticker_id).png_path == f"noto-emoji/{sticker_id}.png"


def test_every_pack_emoji_has_a_twemoji_svg(twemoji_dir: Path) -> None:
    missing = []
    for entry in default_pack_entries():
        try:
            twemoji_svg(entry["emoji"], twemoji_dir)
        except EmojiRenderError:
            missing.append(entry["emoji"])
    assert not missing


def test_twemoji_file_names(twemoji_dir: Path) -> None:
    # VS16 is dropped from single emoji but kept inside ZWJ sequences; tones are code points.
    assert twemoji_svg("❤️", twemoji_dir).name == "2764.svg"
    assert twemoji_svg("❤", twemoji_dir).name == "2764.svg"
    assert twemoji_svg("❤️‍🩹", twemoji_dir).name == "2764-fe0f-200d-1fa79.svg"
    assert twemoji_svg("❤\u200d🩹", twemoji_dir).name == "2764-fe0f-200d-1fa79.svg"
    assert twemoji_svg("😶‍🌫️", twemoji_dir).name == "1f636-200d-1f32b-fe0f.svg"
    assert twemoji_svg("👍🏽", twemoji_dir).name == "1f44d-1f3fd.svg"
    with pytest.raises(EmojiRenderError, match="no Twemoji SVG"):
        twemoji_svg("🧌\u200d🧌", twemoji_dir)


def test_missing_twemoji_says_how_to_fetch_it(tmp_path: Path) -> None:
    with pytest.raises(EmojiRenderError, match="make twemoji"):
        render_twemoji("😢", tmp_path)


def _edge_width(image: Image.Image) -> float:
    """Partly transparent pixels per pixel of the figure's outline: ~1 when crisp."""
    alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255
    inside = alpha >= 0.5
    core = inside.copy()
    for axis in (0, 1):
        for shift in (1, -1):
            core &= np.roll(inside, shift, axis)
    return float(((alpha > 0.05) & (alpha < 0.95)).sum() / max((inside & ~core).sum(), 1))


def _sharpness(image: Image.Image) -> float:
    """Mean of the strongest 1% of luminance steps between neighbouring pixels, on white."""
    rgba = np.asarray(image, dtype=np.float32) / 255
    alpha = rgba[..., 3]
    luma = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    luma = luma * alpha + 1 - alpha
    steps = np.concatenate([np.abs(np.diff(luma, axis=a)).ravel() for a in (0, 1)])
    return float(np.sort(steps)[-len(steps) // 100:].mean())


@pytest.mark.parametrize("emoji", ["😢", "🤗", "❤️‍🩹", "☕", "‼️"])
def test_vector_stickers_are_crisp(twemoji_dir: Path, emoji: str) -> None:
    vector, bitmap = render_twemoji(emoji, twemoji_dir), render_emoji(emoji)
    assert vector.mode == "RGBA" and vector.size == (512, 512)
    # Measured: outlines 0.9-1.6 px wide against 4-12 px for the 136 px Noto bitmap
    # upscaled to 512; the strongest steps about twice as steep.
    assert _edge_width(vector) < 2.0 and _edge_width(vector) < _edge_width(bitmap) / 2
    assert _sharpness(vector) > 1.5 * _sharpness(bitmap)


def test_a_pack_drawn_from_other_artwork_is_rendered_again(library: StickerLibrary) -> None:
    sticker = library.get("noto-1f622")
    assert _up_to_date(library, sticker)
    other = sticker.model_copy(update={"license": TWEMOJI_LICENSE})
    assert not _up_to_date(library, other)  # same id, other license: drawn anew


def test_a_twemoji_pack_keeps_the_ids_and_draws_vector_art(
        tmp_path: Path, encoder, twemoji_dir: Path, monkeypatch) -> None:
    few = [e for e in default_pack_entries() if e["emoji"] in ("😢", "❤️", "🫂")]
    monkeypatch.setattr("engine.stickers.build.default_pack_entries", lambda: few)
    pack = build_default_pack(tmp_path, encoder, twemoji_dir=twemoji_dir,
                              show_progress=False)
    assert {s.id for s in pack} == {emoji_id(e["emoji"]) for e in few}
    for sticker in pack:
        assert sticker.license == TWEMOJI_LICENSE
        assert sticker.png_path == f"noto-emoji/{sticker.id}.png"
        with Image.open(pack.png_file(sticker.id)) as png:
            assert _edge_width(png.convert("RGBA")) < 2.0


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
