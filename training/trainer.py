"""One training loop for every PEGS stage: AdamW, transformers' cosine schedule with warmup,
accumulation, bf16 autocast on GPU, exact resume, metrics, validation each epoch.

Resume is exact: the data order of each epoch comes from (seed, epoch); a resume point
(written every `checkpoint_every` optimizer steps and at each epoch's end) holds the
trained tensors, optimizer, schedule and RNG states, so a run stopped and resumed ends
with the same weights as one that never stopped.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from engine.pegs.model import PegsModel
from training.batches import CaptionTargets, StickerFeatures, make_batch
from training.data import Sample
from training.stages import StageConfig

log = logging.getLogger(__name__)

RESUME_FILE = "resume.pt"
METRICS_FILE = "metrics.jsonl"


@dataclass
class StageResult:
    steps: int
    finished: bool  # False when stopped early (stop_after) with a resume point left
    seconds: float
    history: list[dict[str, float]]  # per optimizer step
    validation: list[dict[str, Any]]  # per epoch


def set_trainable(model: PegsModel, categories: tuple[str, ...]) -> list[torch.nn.Parameter]:
    """Only `categories` train; returns their parameters. The first call remembers every
    trainable parameter so later stages can switch others back on."""
    if not hasattr(model, "all_categories"):
        model.all_categories = model.parameter_categories()
    named = dict(model.named_parameters())
    wanted = {n for c in categories for n in model.all_categories[c]}
    for names in model.all_categories.values():
        for name in names:
            named[name].requires_grad_(name in wanted)
    return [named[n] for n in sorted(wanted)]


def restore_trainable(model: PegsModel) -> None:
    named = dict(model.named_parameters())
    for names in getattr(model, "all_categories", {}).values():
        for name in names:
            named[name].requires_grad_(True)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    order = list(range(n))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return order


class Trainer:
    def __init__(self, model: PegsModel, stage: StageConfig, stickers: StickerFeatures,
                 captions: CaptionTargets | None, run_dir: Path, *, seed: int = 0,
                 evaluate: Callable[[PegsModel], dict[str, float]] | None = None,
                 progress: bool = True) -> None:
        self.model, self.stage = model, stage
        self.stickers, self.captions = stickers, captions
        self.run_dir = Path(run_dir)
        self.seed = seed
        self.evaluate = evaluate
        self.progress = progress
        self.cuda = model.device.type == "cuda"

    # --- one micro-batch ---------------------------------------------------------------------
    def losses(self, samples: list[Sample]) -> dict[str, torch.Tensor]:
        batch = make_batch(self.model, samples, self.stage, self.stickers, self.captions)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda):
            out = self.model(**batch)
        parts = {"lm": out.lm_loss, "gen": out.gen_loss, "ret": out.ret_loss}
        weights = {"lm": self.stage.lambda_lm, "gen": self.stage.lambda_gen,
                   "ret": self.stage.lambda_ret}
        present = {k: v for k, v in parts.items() if v is not None and weights[k] > 0}
        if not present:
            raise ValueError(f"stage {self.stage.name}: a batch with no loss to train on")
        present["loss"] = sum(weights[k] * v for k, v in present.items())
        return present

    @torch.no_grad()
    def validate(self, samples: list[Sample]) -> dict[str, float]:
        self.model.eval()
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        size = self.stage.batch_size
        for start in range(0, len(samples), size):
            for key, value in self.losses(samples[start:start + size]).items():
                sums[key] = sums.get(key, 0.0) + float(value)
                counts[key] = counts.get(key, 0) + 1
        result = {f"val_{k}": sums[k] / counts[k] for k in sums}
        if self.evaluate is not None:
            result.update(self.evaluate(self.model))
        self.model.train()
        return result

    # --- the loop ----------------------------------------------------------------------------
    def fit(self, train: list[Sample], val: list[Sample] | None = None, *,
            stop_after: int | None = None) -> StageResult:
        """Train (or resume) the stage; `stop_after` optimizer steps in this call, then
        leave a resume point and return unfinished."""
        stage, model = self.stage, self.model
        if not train:
            raise ValueError(f"stage {stage.name}: no training samples")
        params = set_trainable(model, stage.trains)
        if not params:
            raise ValueError(f"stage {stage.name}: nothing to train in {stage.trains}")
        optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay,
                                      betas=stage.adam_betas, eps=stage.adam_eps)
        per_epoch = math.ceil(len(train) / (stage.batch_size * stage.grad_accum))
        total = per_epoch * stage.epochs
        warmup = stage.warmup_steps if stage.warmup_steps is not None \
            else int(stage.warmup_ratio * total)
        # Linear warmup from lr 0 (none when warmup is 0), then a half cosine down to 0.
        schedule = get_cosine_schedule_with_warmup(optimizer, min(warmup, total), total)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = self._resume(optimizer, schedule)
        step, history, validation = state["step"], state["history"], state["validation"]
        if not state["resumed"]:
            torch.manual_seed(self.seed)  # dropout; a resumed run restores the RNG instead
        started, done_now = time.perf_counter(), 0
        writer = _tensorboard(self.run_dir)
        bar = tqdm(total=total, initial=step, desc=f"stage {stage.name}",
                   disable=not self.progress)
        model.train()
        while step < total:
            epoch, within = divmod(step, per_epoch)
            order = epoch_order(len(train), self.seed, epoch)
            first = within * stage.batch_size * stage.grad_accum
            chunk = order[first:first + stage.batch_size * stage.grad_accum]
            optimizer.zero_grad(set_to_none=True)
            logged: dict[str, float] = {}
            micro = [chunk[i:i + stage.batch_size] for i in range(0, len(chunk),
                                                                   stage.batch_size)]
            for indices in micro:
                parts = self.losses([train[i] for i in indices])
                (parts["loss"] / len(micro)).backward()
                for key, value in parts.items():
                    logged[key] = logged.get(key, 0.0) + float(value.detach()) / len(micro)
            torch.nn.utils.clip_grad_norm_(params, stage.max_grad_norm)
            optimizer.step()
            schedule.step()
            step += 1
            done_now += 1
            record = {"stage": stage.name, "step": step, "epoch": epoch + 1,
                      "lr": schedule.get_last_lr()[0], **logged}
            history.append(record)
            self._log(record, writer)
            bar.update(1)
            bar.set_postfix(loss=f"{logged['loss']:.3f}")
            epoch_end = step % per_epoch == 0
            if epoch_end and val:
                result = {"stage": stage.name, "epoch": epoch + 1, "step": step,
                          **self.validate(val)}
                validation.append(result)
                self._log(result, writer)
            stopping = stop_after is not None and done_now >= stop_after and step < total
            if epoch_end or stopping or step % stage.checkpoint_every == 0:
                self._save_resume(optimizer, schedule, step, history, validation)
            if stopping:
                bar.close()
                return StageResult(step, False, time.perf_counter() - started, history,
                                   validation)
        bar.close()
        restore_trainable(model)
        return StageResult(step, True, time.perf_counter() - started, history, validation)

    # --- resume points and metrics ---------------------------------------------------------------
    def _trained_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.model.named_parameters()
                if p.requires_grad}

    def _save_resume(self, optimizer: torch.optim.Optimizer, schedule: Any, step: int,
                     history: list, validation: list) -> None:
        state = {"step": step, "stage": asdict(self.stage), "seed": self.seed,
                 "trained": self._trained_state(), "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict(), "torch_rng": torch.get_rng_state(),
                 "history": history, "validation": validation}
        temp = self.run_dir / (RESUME_FILE + ".tmp")
        torch.save(state, temp)
        temp.replace(self.run_dir / RESUME_FILE)

    def _resume(self, optimizer: torch.optim.Optimizer, schedule: Any) -> dict[str, Any]:
        path = self.run_dir / RESUME_FILE
        if not path.is_file():
            return {"step": 0, "history": [], "validation": [], "resumed": False}
        state = torch.load(path, weights_only=False)
        if state["stage"] != asdict(self.stage) or state["seed"] != self.seed:
            raise ValueError(f"{path} belongs to another run (stage settings or seed differ); "
                             f"remove it to start this stage again")
        named = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in state["trained"].items():
                named[name].copy_(tensor)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        log.info("stage %s resumed at step %d", self.stage.name, state["step"])
        return {**state, "resumed": True}

    def _log(self, record: dict[str, Any], writer: Any) -> None:
        with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if writer is not None:
            for key, value in record.items():
                if isinstance(value, float):
                    writer.add_scalar(f"{record['stage']}/{key}", value, record["step"])


def _tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def plot_losses(history: list[dict[str, Any]], validation: list[dict[str, Any]],
                path: Path) -> None:
    """Training losses per optimizer step and validation losses per epoch, one panel a stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(dict.fromkeys(r["stage"] for r in history))
    fig, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 3.8), squeeze=False)
    for ax, name in zip(axes[0], stages, strict=True):
        rows = [r for r in history if r["stage"] == name]
        for key in ("loss", "lm", "ret", "gen"):
            if any(key in r for r in rows):
                ax.plot([r["step"] for r in rows if key in r], [r[key] for r in rows if key in r],
                        label=key, linewidth=1)
        vals = [v for v in validation if v["stage"] == name and "val_loss" in v]
        if vals:
            ax.plot([v["step"] for v in vals], [v["val_loss"] for v in vals], "o--",
                    label="validation loss")
        ax.set(title=f"stage {name}", xlabel="optimizer step", ylabel="loss")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
