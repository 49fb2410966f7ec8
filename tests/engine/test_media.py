"""Reading every picture format people send, and refusing the dangerous ones quickly."""

from __future__ import annotations

import gzip
import json
import random
import time

import pytest
from PIL import Image

from engine.media import (
    SUPPORTED_FORMATS,
    DecodedMedia,
    MediaError,
    MediaLimits,
    decode_bytes,
    decode_file,
    encode_png,
    encode_webp,
    fit_square,
    on_white,
    sniff_format,
)
from engine.settings import EngineSettings
from tests.engine import media_samples as samples

RED, BLUE, CLEAR = samples.RED, samples.BLUE, samples.CLEAR


def _close(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 8) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def _centre(media: DecodedMedia) -> tuple[int, ...]:
    return media.image.getpixel((media.image.width // 2, media.image.height // 2))


def _refused(data: bytes, code: str, limits: MediaLimits | None = None,
             hint: str | None = None) -> MediaError:
    with pytest.raises(MediaError) as info:
        decode_bytes(data, limits, format_hint=hint)
    err = info.value
    assert err.code == code, err
    # A sentence a person can read, not a traceback.
    assert err.user_message.endswith(".") and "Error" not in err.user_message
    return err


# --- every format decodes --------------------------------------------------------

@pytest.mark.parametrize(("make", "fmt", "frames"), [
    (samples.make_png, "png", 1),
    (samples.make_apng, "png", 2),
    (samples.make_webp, "webp", 1),
    (lambda: samples.make_webp(animated=True), "webp", 2),
    (samples.make_gif, "gif", 2),
    (samples.make_webm, "webm", 6),
])
def test_raster_and_video_formats_show_the_first_frame(make, fmt, frames) -> None:
    media = decode_bytes(make())
    assert (media.format, media.width, media.height) == (fmt, 64, 64)
    assert media.image.mode == "RGBA" and media.image.size == (64, 64)
    assert (media.frames, media.animated) == (frames, frames > 1)
    # Frame 0 is red; later frames are blue, so this also proves we took the first.
    assert _close(_centre(media), RED), _centre(media)
    # The transparent corner stays transparent (for WEBM: the alpha plane survived).
    assert media.image.getpixel((1, 1))[3] == 0


def test_jpeg_decodes_opaque() -> None:
    media = decode_bytes(samples.make_jpeg((80, 48)))
    assert (media.format, media.width, media.height, media.animated) == ("jpeg", 80, 48, False)
    assert _close(_centre(media), RED)
    assert _close(media.image.getpixel((1, 1)), (255, 255, 255, 255))


def test_webm_without_alpha_stays_opaque() -> None:
    media = decode_bytes(samples.make_webm(alpha=False))
    assert _close(_centre(media), RED)
    assert media.image.getpixel((1, 1))[3] == 255


@pytest.mark.parametrize(("make", "fmt"), [(samples.make_tgs, "tgs"),
                                           (samples.make_lottie_json, "lottie")])
def test_lottie_renders_frame_zero(make, fmt) -> None:
    media = decode_bytes(make())
    assert (media.format, media.width, media.height) == (fmt, 512, 512)
    assert (media.frames, media.animated) == (30, True)
    assert media.image.size == (512, 512)
    assert _close(_centre(media), RED)
    assert media.image.getpixel((5, 5))[3] == 0


def test_big_lottie_is_rendered_at_most_512_px() -> None:
    media = decode_bytes(samples.make_tgs(size=2048))
    assert (media.width, media.height) == (2048, 2048)
    assert media.image.size == (512, 512)
    assert _close(_centre(media), RED)


def test_bytes_decide_the_format_not_the_name() -> None:
    assert decode_bytes(samples.make_gif(), format_hint="photo.png").format == "gif"
    assert decode_bytes(samples.make_png(), format_hint="image/jpeg").format == "png"


@pytest.mark.parametrize(("make", "fmt"), [
    (samples.make_png, "png"), (samples.make_jpeg, "jpeg"), (samples.make_gif, "gif"),
    (samples.make_webp, "webp"), (samples.make_tgs, "tgs"),
    (samples.make_lottie_json, "lottie"), (samples.make_webm, "webm"),
])
def test_sniff_format_by_magic_bytes(make, fmt) -> None:
    assert sniff_format(make()) == fmt
    assert fmt in SUPPORTED_FORMATS


def test_decode_file_reads_from_disk(tmp_path) -> None:
    path = tmp_path / "sticker.tgs"
    path.write_bytes(samples.make_tgs())
    assert decode_file(path).format == "tgs"
    big = tmp_path / "big.png"
    big.write_bytes(samples.make_png((256, 256)) + bytes(4000))
    with pytest.raises(MediaError) as info:
        decode_file(big, MediaLimits(max_bytes=2000))
    assert info.value.code == "too_large"


def test_limits_come_from_settings() -> None:
    settings = EngineSettings(max_upload_bytes=1234, max_image_pixels=99, max_animation_frames=7,
                        max_animation_seconds=2.5)
    limits = MediaLimits.from_settings(settings)
    assert (limits.max_bytes, limits.max_pixels, limits.max_frames, limits.max_seconds) == (
        1234, 99, 7, 2.5)
    _refused(samples.make_png(), "too_many_pixels", limits=MediaLimits.from_settings(
        EngineSettings(max_image_pixels=1000)))


# --- damaged, unknown and dangerous files are refused ----------------------------

@pytest.mark.parametrize(("make", "label", "keep"), [
    (samples.make_png, "PNG", 0.5), (samples.make_webp, "WEBP", 0.5),
    (samples.make_jpeg, "JPEG", 0.5), (samples.make_gif, "GIF", 0.5),
    (lambda size: samples.make_tgs(), "TGS", 0.5),
    # A WEBM cut after its first frame still shows that frame; cut inside it.
    (samples.make_webm, "WEBM", 0.25),
])
def test_truncated_files_are_corrupt(make, label, keep) -> None:
    err = _refused(samples.truncate(make((256, 256)), keep), "corrupt")
    assert label in err.user_message and "damaged" in err.user_message


def test_random_bytes_are_unsupported() -> None:
    err = _refused(samples.random_bytes(), "unsupported")
    assert "PNG, WEBP, JPEG, GIF, TGS or WEBM" in err.user_message
    err = _refused(samples.random_bytes(), "unsupported", hint="notes.xyz")
    assert err.user_message.startswith("I can't open .xyz files")


def test_tgs_that_is_not_gzip_is_corrupt() -> None:
    err = _refused(samples.random_bytes(), "corrupt", hint="sticker.tgs")
    assert "TGS" in err.user_message


def test_gzip_of_non_json_is_corrupt() -> None:
    _refused(gzip.compress(b"this is not a lottie animation at all"), "corrupt")
    _refused(gzip.compress(b'{"hello": "json, but no layers"}'), "corrupt")


def test_empty_file() -> None:
    assert "empty" in _refused(b"", "empty").user_message


def test_over_size_file_is_refused_before_reading() -> None:
    err = _refused(bytes(5 * 1024 * 1024 + 1), "too_large")
    assert err.user_message == "That file is too big: the limit is 5 MB."


def _timed_refusal(data: bytes, code: str, limits: MediaLimits | None = None) -> MediaError:
    start = time.perf_counter()
    err = _refused(data, code, limits)
    assert time.perf_counter() - start < 1.0
    return err


def test_gzip_bomb_is_refused_quickly() -> None:
    bomb = samples.make_gzip_bomb()  # 200 MB of zeros in under 1 MB
    err = _timed_refusal(bomb, "too_large")
    assert "unpacked" in err.user_message


def test_png_claiming_fifty_thousand_squared_is_refused_quickly() -> None:
    err = _timed_refusal(samples.make_png_claiming(50_000, 50_000), "too_many_pixels")
    assert "50000x50000" in err.user_message


@pytest.mark.parametrize(("width", "height"), [(5000, 5000), (65000, 65000)])
def test_jpeg_claiming_too_many_pixels_is_refused_quickly(width, height) -> None:
    # 25 MP trips our limit after Pillow's header parse; 4 GP trips Pillow's own guard.
    err = _timed_refusal(samples.make_jpeg_claiming(width, height), "too_many_pixels")
    assert "too large" in err.user_message


def test_pillows_own_bomb_check_becomes_a_media_error(monkeypatch) -> None:
    generous = MediaLimits(max_pixels=10**9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    _refused(samples.make_png((64, 64)), "too_many_pixels", generous)  # > 2x: error
    _refused(samples.make_png((40, 40)), "too_many_pixels", generous)  # > 1x: warning


def test_lottie_with_ten_thousand_frames_is_too_long() -> None:
    err = _timed_refusal(samples.make_tgs(frames=10_000), "too_long")
    assert "10000 frames" in err.user_message


def test_lottie_longer_than_the_time_limit() -> None:
    err = _refused(samples.make_lottie_json(frames=600, frame_rate=30), "too_long")
    assert "20.0 seconds" in err.user_message


def test_lottie_with_picture_assets_is_refused(tmp_path) -> None:
    # An image asset would make the renderer open a file on the server's disk.
    doc = samples.lottie_document()
    doc["assets"] = [{"id": "img", "w": 8, "h": 8, "u": str(tmp_path) + "/", "p": "x.png"}]
    err = _refused(gzip.compress(json.dumps(doc).encode()), "unsupported")
    assert "pictures" in err.user_message


def test_lottie_claiming_huge_canvas() -> None:
    _refused(samples.make_lottie_json(size=100_000), "too_many_pixels")


def test_webm_longer_than_the_limit_is_too_long() -> None:
    clip = samples.make_webm(frames=45, fps=30)  # 1.5 s
    assert decode_bytes(clip).frames == 45
    _timed_refusal(clip, "too_long", MediaLimits(max_seconds=1.0))
    _refused(clip, "too_long", MediaLimits(max_frames=30))


def test_gif_with_too_many_frames() -> None:
    _refused(samples.make_gif(frames=12), "too_long", MediaLimits(max_frames=10))


def test_damaged_bytes_never_crash() -> None:
    """Bytes flipped inside valid files: each decodes or is refused, nothing else."""
    rng = random.Random(7)
    for make in (samples.make_png, samples.make_jpeg, samples.make_gif, samples.make_webp,
                 samples.make_apng, samples.make_tgs, samples.make_webm):
        original = make()
        for _ in range(15):
            data = bytearray(original)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(8, len(data))] = rng.randrange(256)
            try:
                media = decode_bytes(bytes(data))
            except MediaError as err:
                assert err.user_message
            else:
                assert media.image.mode == "RGBA" and media.image.width > 0


# --- shaping pictures for sending ------------------------------------------------

def test_on_white_fills_transparency_with_white() -> None:
    flat = on_white(samples.sample_image())
    assert flat.mode == "RGB"
    assert flat.getpixel((1, 1)) == (255, 255, 255)
    assert flat.getpixel((32, 32)) == (255, 0, 0)


def test_encode_png_round_trips() -> None:
    media = decode_bytes(encode_png(samples.sample_image((30, 20))))
    assert (media.format, media.width, media.height) == ("png", 30, 20)
    assert media.image.getpixel((15, 10)) == RED


def test_encode_webp_makes_a_512_sticker_without_cropping() -> None:
    wide = samples.sample_image((200, 100), background=BLUE)
    data = encode_webp(wide)
    assert len(data) <= 512 * 1024
    media = decode_bytes(data)
    assert (media.format, media.width, media.height) == ("webp", 512, 512)
    assert _close(_centre(media), RED, 12)
    assert media.image.getpixel((256, 10))[3] == 0  # padding above the wide picture
    assert _close(media.image.getpixel((5, 256)), BLUE, 12)  # its edge is kept


def test_fit_square_crops_margins_and_pads() -> None:
    out = fit_square(samples.sample_image((100, 60)), size=128)
    assert out.size == (128, 128)
    assert _close(out.getpixel((64, 64)), RED)
    assert _close(out.getpixel((2, 64)), RED)  # the transparent margin was cropped away
    assert out.getpixel((64, 2))[3] == 0  # and the short side padded


def test_media_error_is_a_value_error() -> None:
    assert issubclass(MediaError, ValueError)
