"""Every training stage on the `tiny` preset: losses fall, only the trained parts are saved,
and a stopped run resumes to the same weights as one that never stopped."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from engine.pegs.checkpoint import read_info
from engine.pegs.diffusion import StickerGenerator, tiny_pipeline
from engine.perception import Perceiver
from tests.engine.pegs.pegs_support import one_thread, tiny_pegs
from tests.training.test_data import session
from training.batches import CaptionTargets
from training.pipeline import TrainOptions, train

HEAD_PREFIX = {"qformer": "vision.qformer", "projection": "vision.proj",
               "retrieval": "ret.", "mapper": "mapper."}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from one_thread()


@pytest.fixture(scope="module")
def captions() -> CaptionTargets:
    return CaptionTargets(StickerGenerator(tiny_pipeline()).text_embedding)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory, library) -> Path:
    """Each user turn names an animal and a feeling (words the tiny tokenizer knows); the
    bot answers each of the 8 pairs with its own sticker, so retrieval has a signal."""
    ids = library.ids()
    pairs = [(a, e) for a in ("dog", "cat", "bird", "fish") for e in ("happy", "sad")]
    path = tmp_path_factory.mktemp("sessions") / "train.jsonl"
    path.write_text("".join(
        json.dumps(session(library, ids[n % 8], ids[-1], f"my {a} is {e}")) + "\n"
        for n, (a, e) in enumerate(pairs * 3)))
    return path


def run(stage: str, out: Path, library, classifier, captions, sessions, **options):
    return train(TrainOptions(preset="tiny", stages=[stage], sessions=[sessions],
                              out=out, version="v1", **options),
                 model=tiny_pegs(), library=library, perceiver=Perceiver(classifier, library),
                 captions=captions, progress=False)


@pytest.mark.parametrize("stage, parts", [
    ("perception", {"qformer", "projection"}),
    ("alignment", {"img_rows", "retrieval", "mapper"}),
    ("emotion", {"img_rows", "retrieval", "mapper"}),
    ("joint", {"lora", "img_rows", "retrieval", "mapper"}),
    ("text-only", {"lora"}),
    ("tool", {"lora"}),
])
def test_a_stage_lowers_its_losses_and_saves_only_what_it_trained(
        stage, parts, tmp_path, library, classifier, captions, sessions) -> None:
    report = run(stage, tmp_path, library, classifier, captions, sessions, max_steps=6,
                 epochs=8)
    steps = [json.loads(line) for line in
             (tmp_path / ".runs" / "v1" / f"1-{stage}" / "metrics.jsonl").read_text().splitlines()
             if '"lr"' in line]
    keys = [k for k in ("lm", "ret", "gen") if k in steps[0]]
    assert keys, steps[0]
    for key in keys:  # the last epoch's mean below the first's, loss by loss
        per_epoch = len(steps) // 8
        first = sum(s[key] for s in steps[:per_epoch]) / per_epoch
        last = sum(s[key] for s in steps[-per_epoch:]) / per_epoch
        assert last < first, (stage, key, first, last)
    folder = tmp_path / "v1"
    assert set(read_info(folder)["categories"]) == parts
    held: set[str] = set()
    if (folder / "heads.safetensors").exists():
        with safe_open(str(folder / "heads.safetensors"), "pt") as f:
            held |= {c for c, prefix in HEAD_PREFIX.items()
                     for k in f.keys() if k.startswith(prefix)}
    if (folder / "adapter_model.safetensors").exists():
        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
            held |= {"lora" if "lora_" in k else "img_rows" for k in f.keys()}
    assert held == parts
    assert set(report["stages"][0]["trains"]) == parts
    assert (tmp_path / ".runs" / "v1" / "loss.png").is_file()


def test_a_stopped_run_resumes_to_the_same_weights(tmp_path, library, classifier, captions,
                                                   sessions) -> None:
    whole = tiny_pegs()
    options = dict(preset="tiny", stages=["joint"], sessions=[sessions], version="v1",
                   max_steps=3, epochs=2)
    train(TrainOptions(out=tmp_path / "whole", **options), model=whole, library=library,
          perceiver=Perceiver(classifier, library), captions=captions, progress=False)
    parted = tiny_pegs()
    stopped = train(TrainOptions(out=tmp_path / "parted", stop_after=4, **options),
                    model=parted, library=library, perceiver=Perceiver(classifier, library),
                    captions=captions, progress=False)
    assert stopped == {"finished": False, "stage": "joint", "step": 4}
    again = tiny_pegs()  # a new process: fresh weights, the resume point restores them
    train(TrainOptions(out=tmp_path / "parted", **options), model=again, library=library,
          perceiver=Perceiver(classifier, library), captions=captions, progress=False)
    mine = dict(again.named_parameters())
    for name, p in whole.named_parameters():
        if p.requires_grad:
            assert torch.equal(p, mine[name]), name


def test_stages_chain_and_the_last_one_is_current(tmp_path, library, classifier, captions,
                                                  sessions) -> None:
    report = train(TrainOptions(preset="tiny", stages=["perception", "alignment"],
                                sessions=[sessions], val_sessions=[sessions], out=tmp_path,
                                version="v2", max_steps=2, epochs=1),
                   model=tiny_pegs(), library=library, perceiver=Perceiver(classifier, library),
                   captions=captions, progress=False)
    assert [s["version"] for s in report["stages"]] == ["v2.1-perception", "v2"]
    assert read_info(tmp_path / "v2")["base"] == "v2.1-perception"
    assert (tmp_path / "CURRENT").read_text().strip() == "v2"
    assert {"ret_top1", "ret_top10", "ret_emotion"} <= set(report["retrieval_after"])
    assert json.loads((tmp_path / "v2" / "training_report.json").read_text())["seed"] == 0


def test_library_negatives_train_against_every_sticker(tmp_path, library, classifier, captions,
                                                       sessions) -> None:
    """With ret_negatives="library" each block is scored against the whole library, so the
    retrieval loss starts near log(library size), not log(stickers in the batch)."""
    run("joint", tmp_path, library, classifier, captions, sessions, max_steps=4, epochs=6,
        ret_negatives="library")
    steps = [json.loads(line) for line in
             (tmp_path / ".runs" / "v1" / "1-joint" / "metrics.jsonl").read_text().splitlines()
             if '"lr"' in line]
    assert steps[0]["ret"] > 0.5 * math.log(len(library.ids()))
    first = sum(s["ret"] for s in steps[:4]) / 4
    last = sum(s["ret"] for s in steps[-4:]) / 4
    assert last < first
