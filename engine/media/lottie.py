"""TGS (gzipped Lottie) and plain Lottie JSON, rendered with rlottie."""

from __future__ import annotations

import json
import zlib
from typing import Any

from PIL import Image

from engine.media.base import (
    SEND_INSTEAD,
    DecodedMedia,
    MediaError,
    MediaLimits,
    as_int,
    human_bytes,
)

RENDER_MAX_SIDE = 512
_CHUNK = 64 * 1024


def gunzip_capped(data: bytes, cap: int, fmt: str = "tgs") -> bytes:
    """Gunzip at most `cap` bytes; larger output is refused without ever being allocated."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16+: expect a gzip header
    out = bytearray()
    pending = data
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, _CHUNK)
            out += chunk
            if len(out) > cap:
                raise MediaError("too_large", "That sticker is too big once unpacked: the "
                                 f"limit is {human_bytes(cap)}.", f"> {cap} bytes", fmt)
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                break  # input used up before the gzip end marker
    except zlib.error as exc:
        raise MediaError.corrupt(fmt, f"gzip: {exc}") from exc
    if not inflater.eof:
        raise MediaError.corrupt(fmt, "gzip stream ends early")
    return bytes(out)


def _parse(text: bytes, fmt: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MediaError.corrupt(fmt, f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        raise MediaError.corrupt(fmt, "JSON without Lottie layers")
    assets = doc.get("assets") or []
    # Image assets make rlottie read files from our disk or decode embedded pictures
    # outside our limits; Telegram forbids them in TGS anyway.
    if not isinstance(assets, list) or any(isinstance(a, dict) and a.get("p") for a in assets):
        raise MediaError("unsupported", "I can't open animations that contain pictures: "
                         f"{SEND_INSTEAD}.", "Lottie image asset", fmt)
    return doc


def decode_lottie(data: bytes, fmt: str, limits: MediaLimits) -> DecodedMedia:
    """`fmt` is 'tgs' (gzip) or 'lottie' (plain JSON)."""
    if fmt == "tgs":
        text = gunzip_capped(data, limits.max_lottie_json_bytes)
    else:
        if len(data) > limits.max_lottie_json_bytes:
            raise MediaError.too_large(len(data), limits.max_lottie_json_bytes, fmt)
        text = data
    doc = _parse(text, fmt)

    width, height = as_int(doc.get("w"), fmt, "w"), as_int(doc.get("h"), fmt, "h")
    limits.check_pixels(fmt, width, height)
    rate = doc.get("fr")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1000:
        raise MediaError.corrupt(fmt, f"frame rate {rate!r}")
    in_point, out_point = doc.get("ip", 0), doc.get("op")
    if not all(isinstance(v, int | float) and not isinstance(v, bool)
               for v in (in_point, out_point)):
        raise MediaError.corrupt(fmt, f"in/out points {in_point!r}/{out_point!r}")
    span = out_point - in_point
    if not span > 0 or span != span:
        raise MediaError.corrupt(fmt, f"out point {out_point!r} not after in point {in_point!r}")
    frames = int(span) if span < 1e12 else 10**12
    limits.check_frames(fmt, frames, span / rate)

    image = _render_first_frame(text, width, height, fmt)
    return DecodedMedia(image=image, format=fmt, width=width, height=height,
                        frames=frames, animated=frames > 1)


def _render_first_frame(text: bytes, width: int, height: int, fmt: str) -> Image.Image:
    from rlottie_python import LottieAnimation  # imported late: it loads a C library

    scale = min(1.0, RENDER_MAX_SIDE / max(width, height))
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    try:
        anim = LottieAnimation.from_data(text.decode("utf-8"))
    except Exception as exc:  # bad text or a loader failure
        raise MediaError.corrupt(fmt, f"rlottie: {exc}") from exc
    try:
        # rlottie returns NULL for JSON it cannot use; rendering that would crash.
        if not anim.animation_p:
            raise MediaError.corrupt(fmt, "rlottie could not load the animation")
        frame = anim.render_pillow_frame(frame_num=0, width=out_w, height=out_h)
        return frame.convert("RGBA")  # frombuffer shares rlottie's buffer: copy it
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError.corrupt(fmt, f"rlottie: {exc}") from exc
    finally:
        anim.lottie_animation_destroy()
