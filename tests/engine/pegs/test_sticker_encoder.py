"""The cpu-small sticker encoder: shapes, preprocessing, persistence (its training and
the committed weights' scores: tests/training/sticker_encoder/)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from engine.pegs.sticker_encoder import (
    EncoderConfig,
    StickerEncoder,
    config_path,
    read_report,
)


def _disc(mode: str) -> Image.Image:
    """A red disc on a transparent (or, for RGB, white) square, in the given mode."""
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((20, 20, 180, 180), fill=(220, 30, 30, 255))
    if mode == "RGB":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    if mode == "P":
        return image.convert("P")  # Pillow keeps the transparent index
    return image


def test_forward_gives_a_patch_grid_and_embed_unit_vectors() -> None:
    torch.manual_seed(0)
    model = StickerEncoder().eval()
    pixels = torch.rand(3, 3, model.image_size, model.image_size)
    feats = model(pixels)
    assert feats.shape == (3, model.num_patches, model.feature_dim) == (3, 36, 192)
    emb = model.embed(pixels)
    assert emb.shape == (3, 384)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_other_sizes_change_the_grid() -> None:
    model = StickerEncoder(EncoderConfig(image_size=128)).eval()
    assert model(torch.rand(1, 3, 128, 128)).shape == (1, 64, 192)
    with pytest.raises(ValueError, match="too small"):
        StickerEncoder(EncoderConfig(image_size=8))


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "P", "LA"])
def test_preprocess_composites_any_mode_on_white(mode: str) -> None:
    model = StickerEncoder()
    image = _disc(mode) if mode != "LA" else _disc("RGBA").convert("LA")
    pixels = model.preprocess([image, image])
    assert pixels.shape == (2, 3, 96, 96) and pixels.dtype == torch.float32
    assert 0.0 <= float(pixels.min()) and float(pixels.max()) <= 1.0
    assert torch.allclose(pixels[0, :, 0, 0], torch.ones(3), atol=0.02)  # corner: white
    centre = pixels[0, :, 48, 48]
    if mode == "LA":
        assert float(centre.max()) < 0.6  # grey disc
    else:
        assert centre[0] > 0.8 and centre[1] < 0.25  # red disc, filling the frame
    assert model.preprocess([]).shape == (0, 3, 96, 96)


def test_save_load_round_trip_gives_identical_embeddings(tmp_path) -> None:
    torch.manual_seed(1)
    model = StickerEncoder().eval()
    path = tmp_path / "enc.safetensors"
    model.save(path, extra={"training": {"note": "test"}})
    loaded = StickerEncoder.load(path)
    assert not loaded.training
    images = [_disc("RGBA"), _disc("RGB")]
    assert np.array_equal(model.encode_images(images), loaded.encode_images(images))
    assert read_report(path)["training"] == {"note": "test"}
    assert config_path(path).is_file()


def test_missing_weights_name_the_training_command(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="training.sticker_encoder.train"):
        StickerEncoder.load(tmp_path / "missing.safetensors")
