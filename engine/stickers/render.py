"""Rendering emoji into 512 px sticker images.

The default pack is drawn from vector art: the Twemoji SVGs of the npm package
`@twemoji/svg` (CC-BY 4.0), rendered with cairosvg. Noto Color Emoji (a 136 px bitmap
font, upscaled) still draws any other emoji, e.g. the composer's fallback art.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.media import STICKER_SIZE, fit_square

NOTO_EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
# The font is a CBDT bitmap font: FreeType only loads it at its one strike size.
NOTO_BITMAP_SIZE = 109
_CANVAS = 4 * NOTO_BITMAP_SIZE
# npm @twemoji/svg, fetched once by scripts/fetch-twemoji.sh (`make twemoji`).
TWEMOJI_VERSION = "15.0.0"
# Rendered at twice the sticker size, then cropped and scaled down by fit_square.
_SVG_OVERSAMPLE = 2
# A code point the font cannot have: its rendering is the "missing glyph" picture.
_MISSING_PROBE = "\U000e0f00"


class EmojiRenderError(RuntimeError):
    """The emoji artwork (font, SVGs, Cairo) is missing or does not draw the emoji."""


def _code_points(emoji: str) -> str:
    """Hex code points joined with '-', variation selector 16 dropped."""
    points = [f"{ord(ch):x}" for ch in emoji if ch != "\ufe0f"]
    if not points:
        raise ValueError("empty emoji")
    return "-".join(points)


def emoji_id(emoji: str) -> str:
    """Stable, filesystem-safe id: `noto-1f622`, ZWJ sequences joined with '-'.

    Variation selector 16 is dropped so that "❤" and "❤️" name the same sticker.
    The prefix stays "noto-" whatever the artwork: logged transcripts name these ids.
    """
    return "noto-" + _code_points(emoji)


@lru_cache(maxsize=4)
def load_emoji_font(path: Path = NOTO_EMOJI_FONT) -> ImageFont.FreeTypeFont:
    if not Path(path).exists():
        raise EmojiRenderError(
            f"emoji font not found at {path}: install the Debian package "
            "fonts-noto-color-emoji (apt-get install fonts-noto-color-emoji)"
        )
    # RAQM shapes ZWJ sequences and skin-tone modifiers into a single glyph.
    return ImageFont.truetype(str(path), NOTO_BITMAP_SIZE,
                              layout_engine=ImageFont.Layout.RAQM)


def _draw_raw(emoji: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    canvas = Image.new("RGBA", (_CANVAS, _CANVAS), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((NOTO_BITMAP_SIZE // 2, NOTO_BITMAP_SIZE // 2), emoji,
                                font=font, embedded_color=True)
    return canvas


@lru_cache(maxsize=4)
def _missing_glyph(path: Path) -> np.ndarray:
    return np.asarray(fit_square(_draw_raw(_MISSING_PROBE, load_emoji_font(path)), 64))


def render_emoji(emoji: str, size: int = STICKER_SIZE,
                 font_path: Path = NOTO_EMOJI_FONT) -> Image.Image:
    """Draw one emoji as an RGBA square sticker, refusing blanks and tofu boxes."""
    font = load_emoji_font(font_path)
    # More than one glyph advance means the sequence fell apart (unsupported ZWJ).
    width = font.getlength(emoji)
    if width > 1.5 * NOTO_BITMAP_SIZE:
        raise EmojiRenderError(f"{emoji!r} is not a single glyph in {font_path.name}")
    raw = _draw_raw(emoji, font)
    box = raw.getchannel("A").getbbox()
    if box is None or min(box[2] - box[0], box[3] - box[1]) < NOTO_BITMAP_SIZE // 8:
        raise EmojiRenderError(f"{emoji!r} renders blank in {font_path.name}")
    small = np.asarray(fit_square(raw, 64))
    if np.abs(small.astype(np.int16) - _missing_glyph(font_path)).mean() < 2.0:
        raise EmojiRenderError(f"{emoji!r} renders as the missing-glyph box")
    return fit_square(raw, size)


# --- Twemoji (vector art of the default pack) ------------------------------------------
@lru_cache(maxsize=4)
def _twemoji_files(svg_dir: Path) -> dict[str, Path]:
    """SVG files by code points without VS16. Twemoji names a file by its code points
    joined with '-', keeping VS16 (fe0f) only inside ZWJ sequences; dropping it
    everywhere gives one key per file (checked for the whole package)."""
    files = {p.stem.replace("-fe0f", ""): p for p in Path(svg_dir).glob("*.svg")}
    if not files:
        raise EmojiRenderError(
            f"no Twemoji SVGs in {svg_dir}: fetch npm @twemoji/svg@{TWEMOJI_VERSION} "
            f"with `make twemoji` (scripts/fetch-twemoji.sh {svg_dir})")
    return files


def twemoji_svg(emoji: str, svg_dir: Path) -> Path:
    """The Twemoji SVG file of `emoji`, with or without VS16."""
    path = _twemoji_files(Path(svg_dir)).get(_code_points(emoji))
    if path is None:
        raise EmojiRenderError(f"{emoji!r} has no Twemoji SVG in {svg_dir}")
    return path


def render_twemoji(emoji: str, svg_dir: Path, size: int = STICKER_SIZE) -> Image.Image:
    """Draw one emoji from its Twemoji SVG as an RGBA square sticker."""
    path = twemoji_svg(emoji, svg_dir)
    try:
        import cairosvg  # loads libcairo when imported
    except OSError as exc:
        raise EmojiRenderError(
            f"cairosvg cannot load Cairo ({exc}): install the Debian package libcairo2 "
            "(apt-get install libcairo2)") from exc
    side = _SVG_OVERSAMPLE * size
    png = cairosvg.svg2png(url=str(path), output_width=side, output_height=side)
    with Image.open(io.BytesIO(png)) as image:
        return fit_square(image, size)
