"""`stickerbot train`: the PEGS stages in order, each saved on top of the one before.

    stickerbot train --preset cpu-small --sessions data/sim/train.jsonl \
        --val-sessions data/sim/test.jsonl --out engine/pegs/checkpoints/cpu-small --version v1
    stickerbot train --preset paper --llm-path /models/vicuna-7b \
        --vision-path /models/blip2-opt-2.7b --sd-path /models/sd-1.5 --sessions ...

Backbones: `--llm-path`, `--vision-path` and `--sd-path` name local model folders (the
paper preset needs the first two); on `tiny` or `cpu-small` they make a custom profile
with that preset's sizes. The widths that must match a backbone (sticker features, SD
text embeddings) are read from its config.

Data per stage: perception on image-caption pairs (a folder or manifest, else the
sticker library's pictures and captions); alignment and emotion on the library's
sticker-text pairs; joint and the baselines on the dialogues. Validation each epoch on
the held-out dialogues (losses and sticker retrieval); a report beside the checkpoint
records the command, data, seed, time and metrics before and after training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.pegs.checkpoint import list_versions, load_weights, save_checkpoint
from engine.pegs.config import PegsConfig, backbone_dims
from engine.pegs.model import PegsModel
from engine.stickers import StickerLibrary
from training import data as datasets
from training.batches import CaptionTargets, StickerFeatures
from training.retrieval_eval import retrieval_metrics
from training.stages import STAGE_ORDER, StageConfig, stage_config
from training.trainer import Trainer, plot_losses

log = logging.getLogger(__name__)

REPORT_FILE = "training_report.json"
PRESET_NAMES = ("tiny", "cpu-small", "paper")


@dataclass
class TrainOptions:
    preset: str = "cpu-small"
    stages: list[str] = field(default_factory=lambda: list(STAGE_ORDER))
    sessions: list[Path] = field(default_factory=list)  # training dialogues
    val_sessions: list[Path] = field(default_factory=list)  # held-out dialogues
    images: Path | None = None  # image-caption folder or manifest for perception
    stickers_dir: Path = Path("data/stickers")
    out: Path = Path("data/checkpoints")
    version: str = "v1"
    base: str | None = None  # an existing version under `out` to start from
    run_dir: Path | None = None  # resume points, metrics, plots (default: out/.runs/version)
    seed: int = 0
    max_steps: int | None = None  # per stage, for quick runs
    epochs: int | None = None  # overrides every stage's epochs
    ret_negatives: str | None = None  # overrides every stage's L_ret negatives (batch|library)
    stop_after: int | None = None  # optimizer steps per stage in this call (then resume)
    threads: int | None = None  # torch threads (default: every core)
    llm_path: str | None = None  # local backbones, replacing the preset's
    vision_path: str | None = None
    sd_path: str | None = None
    device: str | None = None  # default: cuda when there is one, else cpu
    command: str = ""


def model_config(options: TrainOptions) -> PegsConfig:
    """The preset's PegsConfig with the local backbones of `options`, if any."""
    dims = backbone_dims(options.vision_path or "", options.sd_path or "")
    if options.preset == "paper":
        if not (options.llm_path and options.vision_path):
            raise ValueError("--preset paper needs --llm-path and --vision-path (local folders "
                             "of the LLM and of a CLIP/SigLIP/BLIP-2 checkpoint)")
        return PegsConfig.paper(options.llm_path, options.vision_path, options.sd_path or "",
                                **dims)
    if options.preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {options.preset!r}; choose one of {PRESET_NAMES}")
    paths = {key: value for key, value in (("llm_path", options.llm_path),
                                           ("vision", options.vision_path),
                                           ("sd_path", options.sd_path)) if value}
    if paths:
        return PegsConfig.custom(options.preset, **paths, **dims)
    return {"tiny": PegsConfig.tiny, "cpu-small": PegsConfig.cpu_small}[options.preset]()


def build_model(options: TrainOptions, config: PegsConfig | None = None) -> PegsModel:
    torch.manual_seed(options.seed)
    return PegsModel.from_config(config or model_config(options))


def stage_samples(stage: StageConfig, options: TrainOptions, library: StickerLibrary,
                  dialogues: list[datasets.Sample]) -> list[datasets.Sample]:
    if stage.data == "images":
        return (datasets.image_caption_samples(options.images) if options.images
                else datasets.perception_samples(library))
    if stage.data == "captions":
        return datasets.caption_samples(library)
    if stage.data == "emotions":
        return datasets.emotion_samples(library)
    return dialogues


def train(options: TrainOptions, *, model: PegsModel | None = None,
          library: StickerLibrary | None = None, perceiver: Any = None,
          captions: CaptionTargets | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the stages; returns the report (also written beside the checkpoint)."""
    started = time.perf_counter()
    config = model_config(options) if model is None else model.config  # refuse bad paths early
    library = library or StickerLibrary.load(options.stickers_dir)
    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if model is None:
        model = build_model(options, config).to(device)
        # Loading applied the serving policy (one thread on small machines); training is
        # the only work here.
        torch.set_num_threads(options.threads or os.cpu_count() or 1)
    perceiver = perceiver or _perceiver(library)
    if captions is None and model.config.sd_path:
        from engine.pegs.diffusion import StickerGenerator

        captions = CaptionTargets(StickerGenerator.from_local_path(
            model.config.sd_path, model.device).text_embedding)
    sessions = [s for path in options.sessions for s in datasets.read_sessions(path)]
    held_out = [s for path in options.val_sessions for s in datasets.read_sessions(path)]
    dialogues = datasets.dialogue_samples(sessions, library, perceiver)
    val = datasets.dialogue_samples(held_out, library, perceiver)
    stickers = StickerFeatures(model, library)
    base = options.base
    if base is not None:
        load_weights(model, options.out / base)
    evaluate = (lambda m: retrieval_metrics(m, val, stickers)) if val else None
    before = evaluate(model) if evaluate else {}
    run_dir = options.run_dir or options.out / ".runs" / options.version
    history: list[dict] = []
    validation: list[dict] = []
    stages_done: list[dict[str, Any]] = []
    for number, name in enumerate(options.stages, start=1):
        stage = stage_config(options.preset, name, epochs=options.epochs,
                             ret_negatives=options.ret_negatives)
        trains = tuple(c for c in stage.trains if c != "mapper" or captions is not None)
        stage = stage.with_(trains=trains)
        samples = stage_samples(stage, options, library, dialogues)
        if stage.max_samples and len(samples) > stage.max_samples:
            samples = random.Random(options.seed).sample(samples, stage.max_samples)
        if options.max_steps:
            samples = samples[:options.max_steps * stage.batch_size * stage.grad_accum]
        stage = stage.with_(epochs=stage.epochs_for(len(samples)))
        # Every stage is validated each epoch on the held-out dialogues: losses under its
        # own targets, and sticker retrieval.
        trainer = Trainer(model, stage, stickers, captions, run_dir / f"{number}-{name}",
                          seed=options.seed, evaluate=evaluate, progress=progress)
        result = trainer.fit(samples, val or None, stop_after=options.stop_after)
        history += result.history
        validation += result.validation
        if not result.finished:
            log.info("stage %s stopped at step %d; run the same command to resume",
                     name, result.steps)
            return {"finished": False, "stage": name, "step": result.steps}
        version = f"{options.version}.{number}-{name}"
        if number == len(options.stages):
            version = options.version
        save_checkpoint(model, options.out, version, {"stage": name, "seed": options.seed},
                        categories=trains, base=base, overwrite=True,
                        activate=number == len(options.stages))
        stages_done.append({"stage": name, "version": version, "base": base,
                            "trains": list(trains), "samples": len(samples),
                            "steps": result.steps, "seconds": round(result.seconds, 1),
                            "config": asdict(stage)})
        base = version
    plot_losses(history, validation, run_dir / "loss.png")
    report = {
        "command": options.command, "preset": options.preset, "seed": options.seed,
        "version": options.version, "stages": stages_done,
        "data": {"sessions": [_describe(p) for p in options.sessions],
                 "val_sessions": [_describe(p) for p in options.val_sessions],
                 "dialogue_samples": len(dialogues), "val_samples": len(val),
                 "library_stickers": len(library), "library_digest": library.digest(),
                 "images": str(options.images) if options.images else "sticker library"},
        "retrieval_before": before, "retrieval_after": evaluate(model) if evaluate else {},
        "validation": validation,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "versions": list_versions(options.out),
    }
    (options.out / options.version / REPORT_FILE).write_text(json.dumps(report, indent=1) + "\n",
                                                             encoding="utf-8")
    return report


def _perceiver(library: StickerLibrary) -> Any:
    from engine.embeddings import TextEncoder
    from engine.emotion import EmotionClassifier
    from engine.perception import Perceiver

    return Perceiver(EmotionClassifier.load(TextEncoder()), library)


def _describe(path: Path) -> dict[str, Any]:
    data = Path(path).read_bytes()
    return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest()[:16],
            "sessions": sum(1 for line in data.splitlines() if line.strip())}


def train_command(args: Any, settings: Any) -> int:
    """`stickerbot train`: run the stages, print held-out retrieval before and after."""
    import sys

    report = train(TrainOptions(
        preset=args.preset, stages=args.stages.split(","), sessions=args.sessions,
        val_sessions=args.val_sessions, images=args.images,
        stickers_dir=args.stickers_dir or settings.stickers_dir,
        out=args.out or settings.data_dir / "checkpoints", version=args.version,
        base=args.base, seed=args.seed, epochs=args.epochs, max_steps=args.max_steps,
        ret_negatives=args.ret_negatives, llm_path=args.llm_path,
        vision_path=args.vision_path, sd_path=args.sd_path, device=args.device,
        stop_after=args.stop_after, command=" ".join(["stickerbot", *sys.argv[1:]])))
    if not report.get("finished", True):
        print(f"stopped in stage {report['stage']} at step {report['step']}: "
              "run the same command again to resume")
        return 0
    before, after = report["retrieval_before"], report["retrieval_after"]
    for name, m in (("untrained", before), ("trained", after)):
        if m:
            print(f"held-out sticker retrieval, {name}: top-1 {m['ret_top1']:.3f}, "
                  f"top-10 {m['ret_top10']:.3f}, emotion {m['ret_emotion']:.3f} "
                  f"({m['ret_samples']} replies, {m['ret_library']} stickers)")
    print(f"checkpoint {report['version']} in {args.out or settings.data_dir / 'checkpoints'}"
          f" after {report['seconds']:.0f} s")
    return 0
