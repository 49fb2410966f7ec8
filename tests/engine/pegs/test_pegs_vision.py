"""The input side: preprocessing, and vision towers from local CLIP / SigLIP / BLIP-2 folders
(tiny random checkpoints written here, read back with local_files_only)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    CLIPVisionConfig,
    CLIPVisionModel,
    OPTConfig,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from engine.pegs import PegsConfig
from engine.pegs.vision import build_vision_tower, preprocess

VIT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
           image_size=32, patch_size=8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vision")
    torch.manual_seed(0)
    blip = Blip2Config(
        vision_config=VIT, num_query_tokens=8,
        qformer_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64, encoder_hidden_size=32, vocab_size=100),
        text_config=OPTConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                              num_attention_heads=2, ffn_dim=32,
                              word_embed_proj_dim=16).to_dict())
    models = {"blip2": Blip2ForConditionalGeneration(blip),
              "clip": CLIPVisionModel(CLIPVisionConfig(**VIT)),
              "siglip": SiglipVisionModel(SiglipVisionConfig(**VIT))}
    for name, model in models.items():
        model.save_pretrained(root / name)
    return {name: root / name for name in models}


def test_preprocess_composites_on_white_and_normalises() -> None:
    clear = Image.new("RGBA", (50, 30), (255, 0, 0, 0))  # fully transparent
    red = Image.new("RGB", (20, 40), (255, 0, 0))
    batch = preprocess([clear, red], 32)
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == torch.float32
    assert torch.allclose(batch[0], torch.ones(3, 32, 32))  # white is +1 with mean=std=0.5
    assert torch.allclose(batch[1, :, 16, 16], torch.tensor([1.0, -1.0, -1.0]))
    assert torch.allclose(batch[1, :, 16, 0], torch.ones(3))  # padded square: white sides
    raw = preprocess([red], 32, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert raw.min() >= 0 and raw.max() <= 1


@pytest.mark.parametrize("name", ["blip2", "clip", "siglip"])
def test_local_checkpoints_build_towers(folders: dict[str, Path], name: str) -> None:
    tower = build_vision_tower(PegsConfig.tiny(vision=str(folders[name])), llm_hidden=64)
    pixels = torch.randn(2, 3, 32, 32)
    queries = 8 if name == "blip2" else 32  # BLIP-2 brings its own learned queries
    assert tower(pixels).shape == (2, queries, 64)
    assert tower.sticker_features(pixels).shape == (2, 32)
    assert not any(p.requires_grad for p in tower.encoder.parameters())


def test_blip2_weights_are_loaded_without_its_language_model(folders: dict[str, Path]) -> None:
    source = Blip2ForConditionalGeneration.from_pretrained(folders["blip2"], local_files_only=True)
    frozen = PegsConfig.tiny(vision=str(folders["blip2"]), freeze_qformer=True)
    tower = build_vision_tower(frozen, llm_hidden=64)
    for ours, theirs in ((tower.encoder, source.vision_model), (tower.qformer, source.qformer)):
        mine = ours.state_dict()
        for key, value in theirs.state_dict().items():
            assert torch.equal(mine[key], value), key
    assert torch.equal(tower.query_tokens.data, source.query_tokens.data)
    assert not tower.query_tokens.requires_grad
    assert not any(p.requires_grad for p in tower.qformer.parameters())


def test_missing_vision_path_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="PegsConfig.vision"):
        build_vision_tower(PegsConfig.tiny(vision=str(tmp_path / "nope")), llm_hidden=64)
