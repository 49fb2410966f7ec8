"""PEGS-Gen / PEGS-RAG on the tiny random Stable Diffusion pipeline (CPU, offline)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # anything that tried to download would fail loudly

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.media import on_white
from engine.pegs.diffusion import (
    StickerGenerator,
    caption_target,
    tiny_pipeline,
)
from engine.stickers.render import render_emoji
from engine.types import Emotion

OUT = 512


@pytest.fixture(scope="module")
def gen() -> StickerGenerator:
    return StickerGenerator(tiny_pipeline(seed=0), output_size=OUT)


@pytest.fixture(scope="module")
def sticker() -> Image.Image:
    return render_emoji("😢")


def _embeds(seed: int, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 77, 32, generator=torch.Generator().manual_seed(seed))


def _pixels(image: Image.Image, side: int = 64) -> np.ndarray:
    small = on_white(image).resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float32)


def _diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(_pixels(a) - _pixels(b)).mean())


def test_tiny_pipeline_shapes(gen: StickerGenerator) -> None:
    assert (gen.seq_len, gen.embed_dim, gen.size) == (77, 32, 64)
    # RAG shares Gen's weights instead of holding a copy.
    assert gen.img2img.unet is gen.pipe.unet and gen.img2img.vae is gen.pipe.vae
    assert gen.img2img.text_encoder is gen.pipe.text_encoder


def test_generate_size_and_seed(gen: StickerGenerator) -> None:
    emb = _embeds(1)
    first = gen.generate(emb, steps=2, guidance_scale=5.0, seed=7)
    assert len(first) == 1 and isinstance(first[0], Image.Image)
    assert first[0].size == (OUT, OUT)
    again = gen.generate(emb, steps=2, guidance_scale=5.0, seed=7)[0]
    assert np.array_equal(np.asarray(first[0]), np.asarray(again))
    other = gen.generate(_embeds(2), steps=2, guidance_scale=5.0, seed=7)[0]
    assert _diff(first[0], other) > 1.0


def test_generate_batch_and_explicit_negative(gen: StickerGenerator) -> None:
    emb = _embeds(3, batch=2)
    images = gen.generate(emb, steps=2, seed=0, negative_prompt_embeds=torch.zeros_like(emb))
    assert [im.size for im in images] == [(OUT, OUT)] * 2


def test_generate_rejects_wrong_shape(gen: StickerGenerator) -> None:
    with pytest.raises(ValueError, match="prompt_embeds"):
        gen.generate(torch.zeros(1, 77, 16), steps=1)
    with pytest.raises(ValueError, match="negative_prompt_embeds"):
        gen.generate(_embeds(0), steps=1, negative_prompt_embeds=torch.zeros(2, 77, 32))


def test_refine_starts_from_the_sticker(gen: StickerGenerator, sticker: Image.Image) -> None:
    emb = _embeds(4)
    from_scratch = gen.generate(emb, steps=10, guidance_scale=5.0, seed=3)[0]
    close = gen.refine(sticker, emb, strength=0.2, steps=10, guidance_scale=5.0, seed=3)
    far = gen.refine(sticker, emb, strength=0.95, steps=10, guidance_scale=5.0, seed=3)[0]
    assert len(close) == 1 and close[0].size == (OUT, OUT)
    d_close, d_far, d_gen = (_diff(im, sticker) for im in (close[0], far, from_scratch))
    assert d_close < 0.5 * d_gen, (d_close, d_gen)
    assert d_far > 2 * d_close, (d_close, d_far)


def test_refine_low_strength_still_runs_a_step(gen: StickerGenerator,
                                               sticker: Image.Image) -> None:
    # 2 steps x 0.1 strength would be zero denoising steps in img2img.
    out = gen.refine(sticker, _embeds(5), strength=0.1, steps=2, seed=0)[0]
    assert out.size == (OUT, OUT)
    with pytest.raises(ValueError, match="strength"):
        gen.refine(sticker, _embeds(5), strength=0.0, steps=2)


def test_text_embedding_shape_and_determinism(gen: StickerGenerator) -> None:
    texts = [caption_target("a crying cat", Emotion.sadness), "a dancing dog, happiness sticker"]
    a = gen.text_embedding(texts)
    assert a.shape == (2, 77, 32) and not a.requires_grad
    assert torch.equal(a, gen.text_embedding(texts))
    assert not torch.allclose(a[0], a[1])
    # The cached unconditional embedding is the empty prompt's.
    assert torch.equal(gen.empty_embedding(3)[1], gen.text_embedding([""])[0])


def test_caption_target_includes_emotion() -> None:
    assert caption_target("A crying cat.", Emotion.sadness) == "A crying cat, sadness sticker"
    assert "surprise" in caption_target("", "surprise")


def test_tiny_pipeline_is_seeded() -> None:
    a, b = tiny_pipeline(seed=1), tiny_pipeline(seed=1)
    for (name, p), q in zip(a.unet.named_parameters(), b.unet.parameters(), strict=True):
        assert torch.equal(p, q), name
    c = tiny_pipeline(seed=2)
    assert not torch.equal(next(a.unet.parameters()), next(c.unet.parameters()))


def test_from_local_path_round_trip(tmp_path: Path, gen: StickerGenerator) -> None:
    gen.pipe.save_pretrained(tmp_path / "sd")
    loaded = StickerGenerator.from_local_path(tmp_path / "sd", "cpu", torch.float32)
    assert loaded.pipe.safety_checker is None
    text = ["a hug, happiness sticker"]
    assert torch.equal(loaded.text_embedding(text), gen.text_embedding(text))
    emb = _embeds(6)
    assert np.array_equal(np.asarray(loaded.generate(emb, steps=2, seed=1)[0]),
                          np.asarray(gen.generate(emb, steps=2, seed=1)[0]))


def test_from_local_path_missing_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="STICKERBOT_SD_PATH"):
        StickerGenerator.from_local_path(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="MY_SETTING"):
        StickerGenerator.from_local_path("", setting="MY_SETTING")
