"""Shared pieces of media reading: the error, the limits, the result and format sniffing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    from engine.settings import EngineSettings

# Formats we read, keyed by the name sniff_format returns; values name them for people.
SUPPORTED_FORMATS: dict[str, str] = {
    "png": "PNG image",
    "webp": "WEBP image",
    "jpeg": "JPEG image",
    "gif": "GIF",
    "tgs": "TGS sticker",
    "lottie": "Lottie animation",
    "webm": "WEBM video sticker",
}
SEND_INSTEAD = "send a PNG, WEBP, JPEG, GIF, TGS or WEBM"

# File-name extensions and MIME subtypes people or platforms attach, mapped to our names.
_HINT_ALIASES = {
    "jpg": "jpeg", "jpe": "jpeg", "pjpeg": "jpeg", "apng": "png", "json": "lottie",
    "x-tgsticker": "tgs", "tgsticker": "tgs", "x-matroska": "webm", "mkv": "webm",
}


def human_bytes(n: int) -> str:
    """5242880 -> '5 MB' (binary units, as upload limits are usually set)."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


class MediaError(ValueError):
    """A file we refuse to read; `user_message` can be shown to the person as it is."""

    def __init__(self, code: str, user_message: str, detail: str = "",
                 format: str | None = None) -> None:
        super().__init__(f"{code}: {detail or user_message}")
        self.code = code
        self.user_message = user_message
        self.format = format

    @classmethod
    def corrupt(cls, fmt: str, detail: str = "") -> MediaError:
        label = SUPPORTED_FORMATS.get(fmt, "file")
        return cls("corrupt", f"I couldn't read that {label}: it looks damaged.", detail, fmt)

    @classmethod
    def too_large(cls, size: int, limit: int, fmt: str | None = None) -> MediaError:
        return cls("too_large", f"That file is too big: the limit is {human_bytes(limit)}.",
                   f"{size} bytes > {limit}", fmt)

    @classmethod
    def too_many_pixels(cls, width: int, height: int, limit: int,
                        fmt: str | None = None) -> MediaError:
        return cls("too_many_pixels",
                   f"That picture is too large ({width}x{height} pixels): the limit is "
                   f"{limit / 1e6:.1f} million pixels.", "", fmt)

    @classmethod
    def too_long(cls, fmt: str, frames: int | None = None, seconds: float | None = None,
                 limits: MediaLimits | None = None) -> MediaError:
        lim = limits or MediaLimits()
        if frames is not None:
            text = f"{frames} frames, and the limit is {lim.max_frames}"
        else:
            unit = "second" if lim.max_seconds == 1 else "seconds"
            text = f"{seconds:.1f} seconds, and the limit is {lim.max_seconds:g} {unit}"
        return cls("too_long", f"That animation is too long: {text}.", "", fmt)


@dataclass
class MediaLimits:
    max_bytes: int = 5 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    max_frames: int = 600
    max_seconds: float = 10.0
    # A TGS is gzip: this caps what it may unpack to (Telegram's own TGS cap is 64 KB packed).
    max_lottie_json_bytes: int = 2 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> MediaLimits:
        return cls(max_bytes=settings.max_upload_bytes,
                   max_pixels=settings.max_image_pixels,
                   max_frames=settings.max_animation_frames,
                   max_seconds=settings.max_animation_seconds)

    def check_frames(self, fmt: str, frames: int, seconds: float | None = None) -> None:
        if frames > self.max_frames:
            raise MediaError.too_long(fmt, frames=frames, limits=self)
        if seconds is not None and seconds > self.max_seconds:
            raise MediaError.too_long(fmt, seconds=seconds, limits=self)

    def check_pixels(self, fmt: str, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise MediaError.too_many_pixels(width, height, self.max_pixels, fmt)


@dataclass
class DecodedMedia:
    """The first frame as RGBA plus what we learnt about the file.

    width/height are the picture's own size; `image` has that size too, except for
    Lottie/TGS, which are rendered to fit 512 px.
    """

    image: Image.Image
    format: str
    width: int
    height: int
    frames: int
    animated: bool


def normalise_hint(hint: str | None) -> str | None:
    """'sticker.TGS', '.jpg', 'image/png' or 'webp' -> our format name or the raw extension."""
    if not hint:
        return None
    name = hint.strip().lower().split(";")[0]
    name = name.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    return _HINT_ALIASES.get(name, name) or None


def _looks_like_lottie(data: bytes) -> bool:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"{"):
        return False
    # The keys every Lottie file has; a JSON object without them is just JSON.
    return all(key in data for key in (b'"layers"', b'"fr"', b'"op"', b'"w"', b'"h"'))


def sniff_format(data: bytes) -> str:
    """The format named by the file's own bytes; MediaError('unsupported') if none fits."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"\x1f\x8b"):
        return "tgs"
    # EBML header; the DocType (webm or matroska) follows within the first bytes.
    if data.startswith(b"\x1a\x45\xdf\xa3") and (b"webm" in data[:64] or b"matroska" in data[:64]):
        return "webm"
    if _looks_like_lottie(data):
        return "lottie"
    raise MediaError("unsupported",
                     f"I can't tell what kind of file that is: {SEND_INSTEAD}.",
                     f"unknown magic {data[:8]!r}")


def as_int(value: Any, fmt: str, name: str) -> int:
    """A JSON number that must be a sane positive size or count."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise MediaError.corrupt(fmt, f"{name} is not a number: {value!r}")
    if not 0 < value < 1e9:
        raise MediaError.corrupt(fmt, f"{name} out of range: {value!r}")
    return int(round(value))
