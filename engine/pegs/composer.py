"""The caption-sticker composer: `gen` mode for profiles without diffusion weights.

It draws the sticker art (a library sticker, or an emoji from Noto Color Emoji) with a
short caption under it in the usual sticker style: bold white letters with a dark
outline, on a transparent 512 px square.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features

from engine.media import STICKER_SIZE, fit_square
from engine.stickers.library import StickerLibrary
from engine.stickers.render import EmojiRenderError, render_emoji
from engine.types import Emotion

log = logging.getLogger(__name__)

# fonts-dejavu-core on Debian; the others are common fallbacks elsewhere.
CAPTION_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"),
)
MAX_CAPTION_WORDS = 4
MAX_CAPTION_CHARS = 28
MAX_WIDE_CHARS = 10  # CJK has no spaces to count words by; each glyph is wide
FILL = (255, 255, 255, 255)
OUTLINE = (24, 24, 24, 255)

EMOTION_EMOJI: dict[Emotion, str] = {
    Emotion.anger: "😠", Emotion.disgust: "🤢", Emotion.fear: "😨",
    Emotion.happiness: "😊", Emotion.neutral: "🙂", Emotion.sadness: "😢",
    Emotion.surprise: "😮",
}
EMOTION_CAPTIONS: dict[Emotion, str] = {
    Emotion.anger: "So annoying!", Emotion.disgust: "Ew, no", Emotion.fear: "Oh no...",
    Emotion.happiness: "Yay!", Emotion.neutral: "Okay", Emotion.sadness: "Sending hugs",
    Emotion.surprise: "Whoa!",
}

_CLAUSE_END = re.compile(r"[.!?;:,\n\u2014\u2013\u3002\uff01\uff1f\uff0c\u060c\u061f]+")
_URL = re.compile(r"https?://\S+|www\.\S+")


def _strip_symbols(text: str) -> str:
    """Drop emoji, ZWJ, variation selectors, controls: the caption font has no glyphs
    for them (the art already carries the emoji)."""
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("So", "Cc", "Cf", "Cs", "Co", "Cn") or 0xFE00 <= ord(ch) <= 0xFE0F \
                or 0x1F3FB <= ord(ch) <= 0x1F3FF:
            kept.append(" " if cat == "Cc" else "")
        else:
            kept.append(ch)
    return re.sub(r"\s+", " ", "".join(kept)).strip()


def _trim(text: str) -> str:
    words = text.split()
    if len(words) > MAX_CAPTION_WORDS:
        text = " ".join(words[:MAX_CAPTION_WORDS])
    wide = any(unicodedata.east_asian_width(ch) in ("W", "F") for ch in text)
    limit = MAX_WIDE_CHARS if wide else MAX_CAPTION_CHARS
    if len(text) > limit:
        text = text[:limit - 1].rstrip() + "…"
    return text


def caption_for(text: str, emotion: Emotion | None = None) -> str:
    """A short caption (<= 4 words) from the reply's first clause, or an emotion phrase."""
    for clause in _CLAUSE_END.split(_URL.sub(" ", text or "")):
        clause = _strip_symbols(clause).strip(" \"'()[]*_-")
        if any(ch.isalnum() for ch in clause):
            return _trim(clause)
    return EMOTION_CAPTIONS.get(emotion, "Hi!") if emotion else "Hi!"


@lru_cache(maxsize=1)
def _font_file() -> Path | None:
    for path in CAPTION_FONTS:
        if path.is_file():
            return path
    log.warning("no bold caption font found (install fonts-dejavu-core); "
                "captions use Pillow's default font")
    return None


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _font_file()
    if path is None:
        return ImageFont.load_default(size)
    # RAQM (when built in) orders right-to-left scripts and joins Arabic letters.
    layout = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size, layout_engine=layout)


def _split_long(word: str, fits: Callable[[str], bool]) -> list[str]:
    """Break a word (or unspaced CJK run) that is wider than a line into pieces."""
    pieces, cur = [], ""
    for ch in word:
        if cur and not fits(cur + ch):
            pieces.append(cur)
            cur = ch
        else:
            cur += ch
    return [*pieces, cur] if cur else pieces


def _wrap(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Greedy word wrap; words wider than a line are broken between characters."""
    lines: list[str] = []
    for word in text.split():
        for i, part in enumerate([word] if fits(word) else _split_long(word, fits)):
            joined = f"{lines[-1]} {part}" if lines else part
            if lines and i == 0 and fits(joined):
                lines[-1] = joined
            else:
                lines.append(part)
    return lines


def _line_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return ascent + descent
    return int(font.getbbox("Ag")[3])


class CaptionComposer:
    """Sticker art plus a bold outlined caption, 512 px RGBA with a transparent ground."""

    def __init__(self, library: StickerLibrary | None = None, *, size: int = STICKER_SIZE,
                 max_lines: int = 2) -> None:
        self.library = library
        self.size = size
        self.max_lines = max_lines
        self.margin = size // 32

    # --- art -------------------------------------------------------------------
    def art(self, key: str, emotion: Emotion | None = None) -> Image.Image:
        """A library sticker by id, else the key drawn as an emoji, else the emotion's
        emoji; raises ValueError only when none of those can be drawn."""
        if self.library is not None and key in self.library:
            with Image.open(self.library.png_file(key)) as im:
                return fit_square(im, self.size)
        for emoji in (key.strip(), EMOTION_EMOJI.get(emotion) if emotion else None):
            if not emoji:
                continue
            try:
                return render_emoji(emoji, self.size)
            except (EmojiRenderError, ValueError) as exc:
                log.warning("composer cannot draw %r: %s", emoji, exc)
        raise ValueError(f"{key!r} is neither a library sticker id nor a drawable emoji")

    # --- caption ---------------------------------------------------------------
    def _layout(self, caption: str) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont,
                                              list[str], int]:
        """Largest font size whose wrapped caption fits max_lines within the width."""
        width = self.size - 2 * self.margin
        top, floor = self.size // 8, max(12, self.size // 24)
        for px in range(top, floor - 1, -2):
            font, stroke = _font(px), max(2, px // 9)

            def fits(s: str, font=font, stroke=stroke) -> bool:
                return font.getlength(s) + 2 * stroke <= width

            lines = _wrap(caption, fits)
            if len(lines) <= self.max_lines:
                return font, lines, stroke
        # Still too long at the smallest size: keep what fits and mark the cut.
        font, stroke = _font(floor), max(2, floor // 9)
        lines = _wrap(caption, lambda s: font.getlength(s) + 2 * stroke <= width)
        last = lines[self.max_lines - 1]
        while last and font.getlength(last + "…") + 2 * stroke > width:
            last = last[:-1]
        return font, [*lines[:self.max_lines - 1], last.rstrip() + "…"], stroke

    def _draw_caption(self, canvas: Image.Image, caption: str, bottom: int) -> int:
        """Draw the caption with its last line ending at `bottom`; returns its top."""
        font, lines, stroke = self._layout(caption)
        draw = ImageDraw.Draw(canvas)
        line_h = _line_height(font) + stroke
        top = bottom - line_h * len(lines) - stroke
        for i, line in enumerate(lines):
            draw.text((self.size // 2, top + i * line_h + stroke), line, font=font,
                      fill=FILL, stroke_width=stroke, stroke_fill=OUTLINE, anchor="ma")
        return top

    # --- the sticker -------------------------------------------------------------
    def compose(self, emoji_or_sticker_id: str, caption: str, *,
                emotion: Emotion | None = None) -> Image.Image:
        art = self.art(emoji_or_sticker_id, emotion)
        text = _trim(_strip_symbols(caption or ""))
        if not text:
            return art
        canvas = Image.new("RGBA", (self.size, self.size), (0, 0, 0, 0))
        # Measure on a scratch canvas first: the art gets whatever height is left.
        scratch = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        caption_top = self._draw_caption(scratch, text, self.size - self.margin)
        side = max(self.size // 4, caption_top - 2 * self.margin)
        small = art.resize((side, side), Image.Resampling.LANCZOS)
        canvas.alpha_composite(small, ((self.size - side) // 2, self.margin))
        # The caption goes over the art, so its outline stays crisp where they touch.
        canvas.alpha_composite(scratch)
        return canvas
