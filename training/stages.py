"""The training stages of PEGS, one dataclass, a preset per profile.

Stages share one training loop (training/trainer.py) and differ only by these fields, as
LLaVA's do. Each saves only the parameter categories it trains (see
`engine.pegs.model.CATEGORIES`) on top of the stage before it.

    perception  1. input projection (and, where it is random, the Q-Former) on
                   image-caption pairs: L_lm of the caption given the image
    alignment   2. [IMG] rows, W_t / W_i, the feature mapper on sticker captions:
                   L_ret (InfoNCE) + L_gen (MSE to the SD text encoder)
    emotion     2. the same on emotion-conditioned sticker-text pairs
    joint       3. LoRA + [IMG] rows + heads on dialogues: l1 L_lm + l2 L_gen + l3 L_ret
    text-only   baseline: LoRA on the dialogues' text, stickers removed
    tool        baseline: LoRA on the text followed by a sticker-tool action,
                   `[sticker: <description>]` (the action is searched in the library)

Hyperparameters: `paper` is the STICKERCONV paper's (Tables 6-8, PEGS-Gen rows: the
model that both retrieves and generates), AdamW with cosine annealing. The paper gives
batch sizes per step; here they are micro-batches times gradient accumulation so that one
GPU holds them (the effective batch is the paper's). Perception and alignment are counted
in steps (80,000 each), the rest in epochs. Adam's betas and eps are the authors' released
configs' (0.9, 0.999, 1e-6). `cpu-small` and `tiny` are ours, sized for this 2-core
machine and for tests.

    stage       paper table        lr     warmup  decay  batch      length  length of run
    perception  6, input           1e-4   2,000   0.05   128        32      80,000 steps
    alignment   6, PEGS-Gen        1e-5   1,000   0.05   108        32      80,000 steps
    emotion     7, PEGS-Gen        5e-5   200     0.05   108        32      4 epochs
    joint       8, PEGS-Gen        1e-4   1,000   0.05   4          768     4 epochs
    text-only   8, Vicuna-text     5e-4   300     0.00   16         4,096   5 epochs
    tool        8, Vicuna-tool     5e-4   300     0.00   16         4,096   5 epochs

"length" is the paper's maximum sequence length in tokens (captions of 32, dialogues of
768); our samples are single captions and one reply with its context, shorter than that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

STAGE_ORDER = ("perception", "alignment", "emotion", "joint")
BASELINES = ("text-only", "tool")


@dataclass(frozen=True)
class StageConfig:
    name: str
    trains: tuple[str, ...]  # parameter categories
    data: str  # images | captions | emotions | dialogues
    target: str = "pegs"  # pegs (sticker block) | none | text (no sticker) | tool (action)
    epochs: int = 1
    steps: int | None = None  # optimizer steps of the whole stage, when set instead of epochs
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    warmup_ratio: float = 0.05
    warmup_steps: int | None = None  # when set, instead of warmup_ratio
    lambda_lm: float = 1.0
    lambda_gen: float = 1.0
    lambda_ret: float = 1.0
    max_grad_norm: float = 1.0
    checkpoint_every: int = 50  # optimizer steps between resume points
    max_samples: int | None = None  # a seeded subset per run (to fit a small machine)
    # L_ret negatives: the other stickers of the batch (the paper, with large batches), or
    # every library sticker (small batches on a small machine: 203 cached feature rows).
    ret_negatives: str = "batch"  # batch | library

    def with_(self, **changes: Any) -> StageConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def epochs_for(self, samples: int) -> int:
        """Epochs over `samples` that make at least `steps` optimizer steps (or `epochs`)."""
        if self.steps is None:
            return self.epochs
        per_epoch = math.ceil(samples / (self.batch_size * self.grad_accum))
        return max(1, math.ceil(self.steps / max(1, per_epoch)))


_HEADS = ("img_rows", "retrieval", "mapper")


def _stages(perception: dict, alignment: dict, joint: dict, emotion: dict | None = None,
            baselines: dict | None = None) -> dict[str, StageConfig]:
    return {
        "perception": StageConfig("perception", ("qformer", "projection"), "images",
                                  target="none", **perception),
        "alignment": StageConfig("alignment", _HEADS, "captions", **alignment),
        "emotion": StageConfig("emotion", _HEADS, "emotions", **(emotion or alignment)),
        "joint": StageConfig("joint", ("lora", *_HEADS), "dialogues", **joint),
        "text-only": StageConfig("text-only", ("lora",), "dialogues", target="text",
                                 **(baselines or joint)),
        "tool": StageConfig("tool", ("lora",), "dialogues", target="tool",
                            **(baselines or joint)),
    }


_ADAM = dict(adam_betas=(0.9, 0.999), adam_eps=1e-6)  # the authors' released configs

PRESETS: dict[str, dict[str, StageConfig]] = {
    "tiny": _stages(dict(epochs=4, batch_size=8, lr=3e-3),
                    dict(epochs=6, batch_size=16, lr=3e-3),
                    dict(epochs=4, batch_size=8, lr=3e-3, checkpoint_every=4)),
    # Sized for ~30 minutes on 2 cores: one LLM forward of 1k tokens takes seconds there.
    # Library-wide L_ret negatives: a batch of 8 holds ~4 stickers, too few to learn a
    # 203-way choice from.
    "cpu-small": _stages(dict(epochs=1, batch_size=8, lr=5e-4, checkpoint_every=10),
                         dict(epochs=2, batch_size=32, lr=2e-3, checkpoint_every=10,
                              ret_negatives="library"),
                         dict(epochs=2, batch_size=8, lr=3e-4, warmup_ratio=0.1,
                              checkpoint_every=5, ret_negatives="library")),
    # The paper's Tables 6-8 (see the module docstring); checkpoint_every keeps a resume
    # point every few minutes of a one-GPU run.
    "paper": _stages(
        dict(steps=80_000, batch_size=32, grad_accum=4, lr=1e-4, warmup_steps=2_000,
             weight_decay=0.05, checkpoint_every=500, **_ADAM),
        dict(steps=80_000, batch_size=36, grad_accum=3, lr=1e-5, warmup_steps=1_000,
             weight_decay=0.05, checkpoint_every=500, **_ADAM),
        dict(epochs=4, batch_size=4, lr=1e-4, warmup_steps=1_000, weight_decay=0.05,
             checkpoint_every=200, **_ADAM),
        emotion=dict(epochs=4, batch_size=36, grad_accum=3, lr=5e-5, warmup_steps=200,
                     weight_decay=0.05, checkpoint_every=200, **_ADAM),
        baselines=dict(epochs=5, batch_size=4, grad_accum=4, lr=5e-4, warmup_steps=300,
                       weight_decay=0.0, checkpoint_every=200, **_ADAM)),
}


def stage_config(preset: str, name: str, **changes: Any) -> StageConfig:
    """A stage of a preset ("custom" takes the cpu-small values), with fields replaced."""
    table = PRESETS.get("cpu-small" if preset == "custom" else preset)
    if table is None:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if name not in table:
        raise ValueError(f"unknown stage {name!r}; choose from {[*STAGE_ORDER, *BASELINES]}")
    stage = table[name].with_(**changes)
    if changes.get("epochs") is not None:  # epochs given: they replace a count of steps
        stage = replace(stage, steps=None)
    return stage
