"""The committed `cpu-small` checkpoint: small, self-describing, and measured on the
held-out dialogues against the same model with untrained heads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.pegs import PegsConfig, PegsModel, load_checkpoint
from engine.pegs.checkpoint import DEFAULT_ROOT, chain, latest_version
from engine.perception import Perceiver
from training.batches import StickerFeatures
from training.data import dialogue_samples, read_sessions
from training.retrieval_eval import retrieval_metrics

pytestmark = pytest.mark.slow
HELD_OUT = Path(__file__).resolve().parents[2] / "training" / "sessions" / "test-seed1.jsonl"


def test_it_is_small_and_records_how_it_was_made() -> None:
    version = latest_version(DEFAULT_ROOT)
    assert version == "v1"
    size = sum(f.stat().st_size for folder in chain(DEFAULT_ROOT / version)
               for f in folder.iterdir())
    assert size < 20 * 1024 * 1024
    report = json.loads((DEFAULT_ROOT / version / "training_report.json").read_text())
    assert report["command"].startswith("stickerbot train") and report["seed"] == 0
    assert report["seconds"] > 0 and report["data"]["val_sessions"]
    assert report["retrieval_after"]["ret_samples"] > 0


def test_its_retrieval_beats_untrained_heads_on_held_out_dialogues(
        classifier, library, model_cache) -> None:
    """Measured on the held-out sessions against the same model with untrained heads: the
    sent sticker ranks higher (top-10 and mean rank) and the top sticker's emotion agrees
    more often. The figures are those of the report written at training time."""
    samples = dialogue_samples(read_sessions(HELD_OUT), library, Perceiver(classifier, library))
    trained = load_checkpoint(DEFAULT_ROOT, overrides={"llm_cache_dir": str(model_cache)})
    after = retrieval_metrics(trained, samples, StickerFeatures(trained, library))
    torch.manual_seed(0)
    untrained = PegsModel.from_config(PegsConfig.cpu_small(llm_cache_dir=str(model_cache)))
    before = retrieval_metrics(untrained, samples, StickerFeatures(untrained, library))
    print(f"held-out retrieval before {before} after {after}")
    report = json.loads((DEFAULT_ROOT / "v1" / "training_report.json").read_text())
    assert after == pytest.approx(report["retrieval_after"], abs=1e-6)
    assert before == pytest.approx(report["retrieval_before"], abs=1e-6)
    assert after["ret_top10"] > before["ret_top10"]
    assert after["ret_top1"] >= before["ret_top1"]
    assert after["ret_mean_rank"] < before["ret_mean_rank"]
    assert after["ret_emotion"] > before["ret_emotion"]
