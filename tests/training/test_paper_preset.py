"""`stickerbot train --preset paper` end to end on tiny local stand-ins of its three
backbones (an LLM, a BLIP-2 and a Stable Diffusion folder, random and built in code): every
stage runs a step with the paper's hyperparameters and the checkpoint loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2QFormerConfig,
    Blip2VisionConfig,
    OPTConfig,
)

import stickerbot
from engine.pegs.checkpoint import load_checkpoint, read_info
from engine.pegs.config import backbone_dims
from engine.pegs.diffusion import tiny_pipeline
from engine.stickers import StickerLibrary
from tests.factories import save_tiny_llm
from tests.training.test_data import session
from training.stages import STAGE_ORDER, stage_config

VISION_WIDTH = 24  # the stand-in's pooled width, where BLIP-2 ViT-g has 1408


def save_tiny_blip2(path: Path) -> str:
    torch.manual_seed(0)
    config = Blip2Config(
        vision_config=Blip2VisionConfig(hidden_size=VISION_WIDTH, intermediate_size=48,
                                        num_hidden_layers=1, num_attention_heads=2,
                                        image_size=32, patch_size=8).to_dict(),
        qformer_config=Blip2QFormerConfig(hidden_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=64,
                                          encoder_hidden_size=VISION_WIDTH).to_dict(),
        text_config=OPTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                              ffn_dim=32, vocab_size=64, word_embed_proj_dim=16).to_dict(),
        num_query_tokens=8)
    Blip2ForConditionalGeneration(config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("paper-stand-ins")
    sd = root / "sd"
    tiny_pipeline().save_pretrained(sd)
    return {"llm": save_tiny_llm(root / "llm"), "vision": save_tiny_blip2(root / "blip2"),
            "sd": str(sd)}


def test_paper_stages_use_the_papers_tables() -> None:
    perception, alignment, emotion, joint = (stage_config("paper", n) for n in STAGE_ORDER)
    effective = [s.batch_size * s.grad_accum for s in (perception, alignment, emotion, joint)]
    assert effective == [128, 108, 108, 4]  # Tables 6, 6, 7, 8
    assert [s.lr for s in (perception, alignment, emotion, joint)] == [1e-4, 1e-5, 5e-5, 1e-4]
    assert [s.warmup_steps for s in (perception, alignment, emotion, joint)] == [
        2000, 1000, 200, 1000]
    assert (perception.steps, alignment.steps, emotion.epochs, joint.epochs) == (
        80_000, 80_000, 4, 4)
    text_only = stage_config("paper", "text-only")
    assert (text_only.lr, text_only.weight_decay, text_only.batch_size * text_only.grad_accum,
            text_only.epochs) == (5e-4, 0.0, 16, 5)
    # Steps become enough epochs over the data at hand, unless epochs are given.
    assert perception.epochs_for(1280) == 8000
    assert stage_config("paper", "perception", epochs=1).epochs_for(1280) == 1


def test_paper_preset_needs_local_backbones(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STICKERBOT_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="--llm-path and --vision-path"):
        stickerbot.main(["train", "--preset", "paper", "--max-steps", "1"])


@pytest.mark.timeout(600)
def test_paper_preset_runs_every_stage_on_local_backbones(stand_ins, tmp_path, pack_root,
                                                          monkeypatch, capsys) -> None:
    shutil.copytree(pack_root, tmp_path / "stickers")
    monkeypatch.setenv("STICKERBOT_DATA_DIR", str(tmp_path))
    library = StickerLibrary.load(tmp_path / "stickers")
    sessions = tmp_path / "sessions.jsonl"
    sessions.write_text("".join(json.dumps(session(library, *library.ids()[i:i + 2])) + "\n"
                                for i in range(4)))
    assert stickerbot.main([
        "train", "--preset", "paper", "--llm-path", stand_ins["llm"],
        "--vision-path", stand_ins["vision"], "--sd-path", stand_ins["sd"],
        "--sessions", str(sessions), "--val-sessions", str(sessions),
        "--max-steps", "1", "--epochs", "1", "--version", "p1"]) == 0
    assert "checkpoint p1" in capsys.readouterr().out

    out = tmp_path / "checkpoints"
    report = json.loads((out / "p1" / "training_report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == list(STAGE_ORDER)
    assert all(s["steps"] == 1 for s in report["stages"])
    # The mapper trained: an SD folder gave L_gen targets of its text encoder's shape.
    assert "mapper" in report["stages"][1]["trains"]
    assert report["stages"][0]["config"]["lr"] == 1e-4

    info = read_info(out / "p1")
    assert info["config"]["profile"] == "paper"
    assert info["config"]["sticker_feature_dim"] == VISION_WIDTH
    assert info["config"]["gen_dim"] == backbone_dims(sd_path=stand_ins["sd"])["gen_dim"] == 32
    model = load_checkpoint(out / "p1")
    assert model.checkpoint_version == "p1"
    assert set(model.trained_categories) >= {"projection", "img_rows", "retrieval", "mapper",
                                             "lora"}
    assert not any(p.requires_grad for p in model.vision.qformer.parameters())  # frozen
