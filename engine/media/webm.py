"""WEBM video stickers (VP9, usually with alpha) through PyAV."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from engine.media.base import DecodedMedia, MediaError, MediaLimits

FMT = "webm"
# FFmpeg's native vp8/vp9 decoders ignore the alpha plane that WEBM keeps in
# BlockAdditional side data; libvpx's decoders read it.
_ALPHA_DECODERS = {"vp9": "libvpx-vp9", "vp8": "libvpx"}
_KEEP_PACKETS = 16  # enough to reach the first shown frame, even past hidden alt-refs


def decode_webm(data: bytes, limits: MediaLimits) -> DecodedMedia:
    import av  # imported late: loads FFmpeg

    try:
        container = av.open(io.BytesIO(data), mode="r", format="matroska")
    except Exception as exc:
        raise MediaError.corrupt(FMT, f"open: {exc}") from exc
    try:
        return _decode(container, limits)
    except MediaError:
        raise
    except Exception as exc:  # any demuxer/decoder failure
        raise MediaError.corrupt(FMT, f"{type(exc).__name__}: {exc}") from exc
    finally:
        container.close()


def _decode(container: Any, limits: MediaLimits) -> DecodedMedia:
    import av

    if not container.streams.video:
        raise MediaError.corrupt(FMT, "no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise MediaError.corrupt(FMT, f"size {width}x{height}")
    limits.check_pixels(FMT, width, height)

    # What the container header claims, refused before reading any packet.
    if container.duration is not None:
        limits.check_frames(FMT, 0, container.duration / av.time_base)
    limits.check_frames(FMT, int(stream.frames or 0))

    # Then what the packets say, since headers can lie; demuxing does not decode.
    kept, count, first_pts, end_pts = [], 0, None, None
    time_base = float(stream.time_base) if stream.time_base else 0.001
    for packet in container.demux(stream):
        if packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        count += 1
        if packet.pts is not None:
            start = packet.pts * time_base
            first_pts = start if first_pts is None else min(first_pts, start)
            end = start + (packet.duration or 0) * time_base
            end_pts = end if end_pts is None else max(end_pts, end)
            if end_pts - first_pts > limits.max_seconds:
                raise MediaError.too_long(FMT, seconds=end_pts - first_pts, limits=limits)
        if count > limits.max_frames:
            raise MediaError.too_long(FMT, frames=count, limits=limits)
        if len(kept) < _KEEP_PACKETS:
            kept.append(packet)
    if not kept:
        raise MediaError.corrupt(FMT, "no video frames")

    image = _first_frame(stream.codec_context.name, kept, limits)
    return DecodedMedia(image=image, format=FMT, width=width, height=height,
                        frames=count, animated=count > 1)


def _first_frame(codec: str, packets: list[Any], limits: MediaLimits) -> Image.Image:
    import av

    decoder = av.CodecContext.create(_ALPHA_DECODERS.get(codec, codec), "r")
    decoder.thread_count = 1  # stickers are tiny; leave the cores to the model
    # FFmpeg refuses frames above this many pixels, even if the bitstream disagrees
    # with the container about the size.
    decoder.options = {"max_pixels": str(limits.max_pixels)}
    for packet in [*packets, None]:
        for frame in decoder.decode(packet):
            limits.check_pixels(FMT, frame.width, frame.height)
            return Image.fromarray(frame.to_ndarray(format="rgba"), "RGBA")
    raise MediaError.corrupt(FMT, "no frame could be decoded")
