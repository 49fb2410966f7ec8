"""Sample sticker files built in code, for tests of anything that reads media.

Every picture shows the same thing unless told otherwise: a transparent background
(white for JPEG, which has no alpha) with a filled square in the middle half, red on
the first frame. So a test can check that the centre pixel is red and a corner is
transparent. Each make_* function returns the file's bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import zlib
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

RED = (255, 0, 0, 255)
BLUE = (0, 0, 255, 255)
CLEAR = (0, 0, 0, 0)


def sample_image(size: tuple[int, int] = (64, 64), colour: tuple[int, ...] = RED,
                 background: tuple[int, ...] = CLEAR) -> Image.Image:
    """RGBA picture: `colour` square over the middle half, `background` elsewhere."""
    image = Image.new("RGBA", size, background)
    w, h = size
    ImageDraw.Draw(image).rectangle((w // 4, h // 4, w * 3 // 4 - 1, h * 3 // 4 - 1),
                                    fill=colour)
    return image


def _save(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def make_png(size: tuple[int, int] = (64, 64)) -> bytes:
    return _save(sample_image(size), "PNG")


def make_jpeg(size: tuple[int, int] = (64, 64)) -> bytes:
    return _save(sample_image(size, background=(255, 255, 255, 255)).convert("RGB"),
                 "JPEG", quality=95)


def _two_frames(size: tuple[int, int]) -> list[Image.Image]:
    return [sample_image(size, RED), sample_image(size, BLUE)]


def _riff_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def make_webp(size: tuple[int, int] = (64, 64), animated: bool = False) -> bytes:
    """Lossless WEBP with alpha; `animated`: frame 0 red, frame 1 blue.

    The animated file is assembled from single-frame bitstreams because this Pillow
    build's animation encoder drops the alpha flag, and real animated stickers have it.
    """
    if not animated:
        return _save(sample_image(size), "WEBP", lossless=True)
    w, h = size
    frames = b""
    for image in _two_frames(size):
        still = _save(image, "WEBP", lossless=True)
        bitstream = still[12:]  # the VP8L chunk, after the RIFF/WEBP header
        # x/2, y/2, width-1, height-1, 100 ms, flags 0b10: do not blend, do not dispose.
        header = _u24(0) + _u24(0) + _u24(w - 1) + _u24(h - 1) + _u24(100) + b"\x02"
        frames += _riff_chunk(b"ANMF", header + bitstream)
    vp8x = _riff_chunk(b"VP8X", bytes([0x10 | 0x02, 0, 0, 0]) + _u24(w - 1) + _u24(h - 1))
    anim = _riff_chunk(b"ANIM", bytes(4) + struct.pack("<H", 0))
    body = b"WEBP" + vp8x + anim + frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_gif(size: tuple[int, int] = (64, 64), frames: int = 2) -> bytes:
    """Animated GIF with transparency: frame 0 red, the others shades of blue."""
    # Distinct shades: Pillow merges identical consecutive frames into one.
    images = [sample_image(size, RED if i == 0 else (0, 0, 255 - i % 200, 255))
              for i in range(frames)]
    first, *rest = images
    return _save(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0,
                 disposal=2)


def make_apng(size: tuple[int, int] = (64, 64)) -> bytes:
    """Animated PNG: frame 0 red, frame 1 blue."""
    first, *rest = _two_frames(size)
    return _save(first, "PNG", save_all=True, append_images=rest, duration=100, loop=0)


def lottie_document(size: int = 512, frames: int = 30, frame_rate: float = 30) -> dict:
    """A Lottie animation whose every frame shows a red square over the middle half."""
    static = {"a": 0, "k": 0}
    half = size / 2
    square = {
        "ty": "gr", "nm": "square",
        "it": [
            {"ty": "rc", "d": 1, "s": {"a": 0, "k": [half, half]},
             "p": {"a": 0, "k": [0, 0]}, "r": static},
            {"ty": "fl", "c": {"a": 0, "k": [1, 0, 0, 1]}, "o": {"a": 0, "k": 100}, "r": 1},
            {"ty": "tr", "p": {"a": 0, "k": [0, 0]}, "a": {"a": 0, "k": [0, 0]},
             "s": {"a": 0, "k": [100, 100]}, "r": static, "o": {"a": 0, "k": 100}},
        ],
    }
    layer = {
        "ddd": 0, "ind": 1, "ty": 4, "nm": "square", "sr": 1, "ao": 0, "bm": 0,
        "ip": 0, "op": frames, "st": 0,
        "ks": {"o": {"a": 0, "k": 100}, "r": static, "p": {"a": 0, "k": [half, half, 0]},
               "a": {"a": 0, "k": [0, 0, 0]}, "s": {"a": 0, "k": [100, 100, 100]}},
        "shapes": [square],
    }
    return {"v": "5.7.4", "nm": "sample", "ddd": 0, "fr": frame_rate, "ip": 0,
            "op": frames, "w": size, "h": size, "assets": [], "layers": [layer]}


def make_lottie_json(size: int = 512, frames: int = 30, frame_rate: float = 30) -> bytes:
    return json.dumps(lottie_document(size, frames, frame_rate)).encode()


def make_tgs(size: int = 512, frames: int = 30, frame_rate: float = 30) -> bytes:
    """A Telegram animated sticker: gzipped Lottie JSON."""
    return gzip.compress(make_lottie_json(size, frames, frame_rate), mtime=0)


def make_webm(size: tuple[int, int] = (64, 64), frames: int = 6, fps: int = 30,
              alpha: bool = True) -> bytes:
    """VP9 WEBM (yuva420p when `alpha`): frame 0 red square on transparent, then blue."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuva420p" if alpha else "yuv420p"
        stream.options = {"lossless": "1", "deadline": "realtime", "cpu-used": "8"}
        stream.codec_context.thread_count = 1
        for i in range(frames):
            rgba = np.asarray(sample_image(size, RED if i == 0 else BLUE))
            frame = av.VideoFrame.from_ndarray(rgba, format="rgba")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buf.getvalue()


# --- files that must be refused ------------------------------------------------

def truncate(data: bytes, keep: float = 0.5) -> bytes:
    """The first `keep` share of a file, as an interrupted upload leaves it."""
    return data[: max(1, int(len(data) * keep))]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def make_png_claiming(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims width x height (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    pixels = zlib.compress(b"\0" * 64)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b""))


@lru_cache(maxsize=2)
def make_gzip_bomb(unpacked_bytes: int = 200 * 1024 * 1024) -> bytes:
    """A gzip (so a 'TGS') of `unpacked_bytes` zeros, built without holding them all."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    parts = [packer.compress(zeros) for _ in range(unpacked_bytes >> 20)]
    parts.append(packer.compress(bytes(unpacked_bytes & ((1 << 20) - 1))))
    parts.append(packer.flush())
    return b"".join(parts)


def random_bytes(n: int = 4096, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).bytes(n)


def make_jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is rewritten to claim width x height."""
    data = bytearray(make_jpeg((16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)
