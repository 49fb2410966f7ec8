"""Reading the pictures people send, safely, and shaping stickers for sending.

Every format is named by its magic bytes (never by a file name or MIME type alone),
checked against MediaLimits before any pixel is decoded, and any decoder failure
comes back as a MediaError whose `user_message` can be shown to the person.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from engine.media.base import (
    SEND_INSTEAD,
    SUPPORTED_FORMATS,
    DecodedMedia,
    MediaError,
    MediaLimits,
    normalise_hint,
    sniff_format,
)

__all__ = [
    "STICKER_SIZE", "SUPPORTED_FORMATS", "DecodedMedia", "MediaError", "MediaLimits",
    "decode_bytes", "decode_file", "encode_png", "encode_webp", "fit_square", "on_white",
    "sniff_format",
]

STICKER_SIZE = 512
# Telegram refuses static sticker files above 512 KB.
WEBP_MAX_BYTES = 512 * 1024


def _sniff(data: bytes, format_hint: str | None) -> str:
    hint = normalise_hint(format_hint)
    try:
        return sniff_format(data)
    except MediaError as exc:
        if hint in SUPPORTED_FORMATS:
            # Named like a format we read but its bytes are not: a damaged file.
            raise MediaError.corrupt(hint, f"bytes do not match {hint}") from exc
        if hint:
            raise MediaError("unsupported", f"I can't open .{hint} files: {SEND_INSTEAD}.",
                             f"hint {format_hint!r}") from exc
        raise


def decode_bytes(data: bytes, limits: MediaLimits | None = None,
                 format_hint: str | None = None) -> DecodedMedia:
    """Decode the first frame of any supported sticker or picture, within `limits`.

    `format_hint` (a file name, extension or MIME type) only shapes error messages
    when the bytes match no format; the bytes always decide.
    """
    limits = limits or MediaLimits()
    if not data:
        raise MediaError("empty", "That file is empty: there is nothing to look at.")
    if len(data) > limits.max_bytes:
        raise MediaError.too_large(len(data), limits.max_bytes)
    fmt = _sniff(data, format_hint)
    if fmt in ("tgs", "lottie"):
        from engine.media.lottie import decode_lottie
        return decode_lottie(data, fmt, limits)
    if fmt == "webm":
        from engine.media.webm import decode_webm
        return decode_webm(data, limits)
    from engine.media.raster import decode_raster
    return decode_raster(data, fmt, limits)


def decode_file(path: Path, limits: MediaLimits | None = None) -> DecodedMedia:
    """decode_bytes for a file on disk; the size is checked before the file is read."""
    limits = limits or MediaLimits()
    path = Path(path)
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise MediaError.too_large(size, limits.max_bytes)
    with path.open("rb") as fh:
        data = fh.read(limits.max_bytes + 1)  # the file may grow after stat()
    return decode_bytes(data, limits, format_hint=path.name)


def on_white(image: Image.Image) -> Image.Image:
    """Composite onto white and drop alpha (RGB), so transparency does not turn black."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def encode_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def encode_webp(image: Image.Image, size: int = STICKER_SIZE) -> bytes:
    """A size x size RGBA WEBP sticker: the whole picture, centred, transparent padding."""
    rgba = image.convert("RGBA")
    scale = size / max(rgba.size)
    inner = (max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale)))
    rgba = rgba.resize(inner, Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(rgba, ((size - inner[0]) // 2, (size - inner[1]) // 2))
    data = b""
    for quality in (90, 75, 60, 40):  # step down only if the platform's size cap needs it
        buf = io.BytesIO()
        canvas.save(buf, format="WEBP", quality=quality, method=4)
        data = buf.getvalue()
        if len(data) <= WEBP_MAX_BYTES:
            break
    return data


def fit_square(image: Image.Image, size: int = STICKER_SIZE) -> Image.Image:
    """Crop transparent margins, pad to a square and resize to `size` (RGBA)."""
    rgba = image.convert("RGBA")
    box = rgba.getchannel("A").getbbox()
    if box:
        rgba = rgba.crop(box)
    side = max(rgba.size)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    return canvas.resize((size, size), Image.Resampling.LANCZOS)
