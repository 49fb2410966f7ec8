"""The committed `cpu-small` checkpoint: small, self-describing, and measured on the
corpus's validation dialogues against the stage it was trained on top of."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.pegs import load_checkpoint
from engine.pegs.checkpoint import DEFAULT_ROOT, chain, latest_version
from engine.perception import Perceiver
from training.batches import StickerFeatures
from training.data import dialogue_samples, read_sessions
from training.retrieval_eval import retrieval_metrics

pytestmark = pytest.mark.slow
HELD_OUT = Path(__file__).resolve().parents[2] / "training" / "corpus" / "validation.jsonl"
HELD_OUT_DIALOGUES = 16  # of 125: the whole split takes ~7 minutes per model here


def test_it_is_small_and_records_how_it_was_made() -> None:
    version = latest_version(DEFAULT_ROOT)
    assert version == "v2"
    size = sum(f.stat().st_size for folder in chain(DEFAULT_ROOT / version)
               for f in folder.iterdir())
    assert size < 20 * 1024 * 1024
    report = json.loads((DEFAULT_ROOT / version / "training_report.json").read_text())
    assert report["command"].startswith("stickerbot train") and report["seed"] == 0
    assert report["seconds"] > 0 and report["data"]["val_sessions"]
    assert report["retrieval_after"]["ret_samples"] > 0


def test_its_retrieval_beats_the_stage_before_on_held_out_dialogues(
        classifier, library, model_cache) -> None:
    """The joint stage, trained on the corpus's train split, against the emotion stage it
    started from, on validation dialogues it did not see: the sent sticker ranks higher
    (top-10 and mean rank) and the top sticker's emotion agrees more often. (The report's
    figures are over the whole split: 0.036 -> 0.162 top-10, rank 97.7 -> 60.6.)"""
    sessions = read_sessions(HELD_OUT)[:HELD_OUT_DIALOGUES]
    samples = dialogue_samples(sessions, library, Perceiver(classifier, library))
    overrides = {"llm_cache_dir": str(model_cache)}
    trained = load_checkpoint(DEFAULT_ROOT, overrides=overrides)
    after = retrieval_metrics(trained, samples, StickerFeatures(trained, library))
    report = json.loads((DEFAULT_ROOT / "v2" / "training_report.json").read_text())
    base = load_checkpoint(DEFAULT_ROOT / report["stages"][0]["base"], overrides=overrides)
    before = retrieval_metrics(base, samples, StickerFeatures(base, library))
    print(f"held-out retrieval before {before} after {after}")
    assert after["ret_samples"] >= 30
    assert after["ret_top10"] > before["ret_top10"]
    assert after["ret_top1"] >= before["ret_top1"]
    assert after["ret_mean_rank"] < before["ret_mean_rank"]
    assert after["ret_emotion"] > before["ret_emotion"]
