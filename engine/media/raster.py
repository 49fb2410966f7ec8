"""PNG (and APNG), WEBP, JPEG and GIF through Pillow, refusing bombs before decoding."""

from __future__ import annotations

import io
import re
import struct
import warnings

from PIL import Image

from engine.media.base import DecodedMedia, MediaError, MediaLimits

_PIL_NAMES = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG", "gif": "GIF"}


def decode_raster(data: bytes, fmt: str, limits: MediaLimits) -> DecodedMedia:
    try:
        # Pillow's own bomb check warns between its limit and twice it; make that an error
        # so it cannot slip through as a log line.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, fmt, limits)
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f" ({int(found.group(1)):,} pixels)" if found else ""
        raise MediaError("too_many_pixels",
                         f"That picture is too large{size}: it has too many pixels to open "
                         "safely.", str(exc), fmt) from exc
    except Exception as exc:  # any decoder failure means a damaged file
        raise MediaError.corrupt(fmt, f"{type(exc).__name__}: {exc}") from exc


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height from fixed header offsets, where the format has them."""
    if fmt == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    if fmt == "gif" and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None  # JPEG/WEBP: Pillow's header parse below, still before any decoding


def _decode(data: bytes, fmt: str, limits: MediaLimits) -> DecodedMedia:
    # Checked before Pillow's own bomb guard, so the refusal can name the size.
    if size := _header_size(data, fmt):
        limits.check_pixels(fmt, *size)
    # open() reads only the header, so the size check below runs before any pixel data.
    with Image.open(io.BytesIO(data), formats=[_PIL_NAMES[fmt]]) as im:
        width, height = im.size
        if width <= 0 or height <= 0:
            raise MediaError.corrupt(fmt, f"size {width}x{height}")
        limits.check_pixels(fmt, width, height)
        # n_frames walks frame headers without decoding pixels (bounded by the file size).
        frames = int(getattr(im, "n_frames", 1))
        limits.check_frames(fmt, frames)
        im.seek(0)
        im.load()
        rgba = im.convert("RGBA")
    return DecodedMedia(image=rgba, format=fmt, width=width, height=height,
                        frames=frames, animated=frames > 1)
