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

Hyperparameters: `paper` takes perception and alignment from the authors' released
training configs (LoRA 8/16/0.05 on q/v as in their model config; AdamW 1e-4, eps 1e-6,
weight decay 0.05, cosine with 10 warmup steps, batch 32, 4 epochs); the joint stage
is not in those configs and is reconstructed (lr 5e-5, effective batch 64, 3 epochs):
check it against the paper's Tables 6-8, not reachable here, before a paper-scale run.
`cpu-small` and `tiny` are ours, sized for this 2-core machine and for tests.
"""

from __future__ import annotations

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


_HEADS = ("img_rows", "retrieval", "mapper")


def _stages(perception: dict, alignment: dict, joint: dict) -> dict[str, StageConfig]:
    return {
        "perception": StageConfig("perception", ("qformer", "projection"), "images",
                                  target="none", **perception),
        "alignment": StageConfig("alignment", _HEADS, "captions", **alignment),
        "emotion": StageConfig("emotion", _HEADS, "emotions", **alignment),
        "joint": StageConfig("joint", ("lora", *_HEADS), "dialogues", **joint),
        "text-only": StageConfig("text-only", ("lora",), "dialogues", target="text", **joint),
        "tool": StageConfig("tool", ("lora",), "dialogues", target="tool", **joint),
    }


_PAPER_PRETRAIN = dict(epochs=4, batch_size=32, lr=1e-4, weight_decay=0.05, adam_eps=1e-6,
                       warmup_steps=10)

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
    # Perception and alignment as in the authors' released configs
    # (pegs/run_script/config/pretrain_{perception,generation}.yaml of their code):
    # AdamW lr 1e-4, betas (0.9, 0.999), eps 1e-6, weight decay 0.05, cosine with 10
    # warmup steps, batch 32, 4 epochs, mixed precision. Joint: not in the released
    # configs; reconstructed, to be checked against the paper's Tables 6-8.
    "paper": _stages(_PAPER_PRETRAIN, _PAPER_PRETRAIN,
                     dict(epochs=3, batch_size=16, grad_accum=4, lr=5e-5, weight_decay=0.0,
                          adam_eps=1e-6)),
}


def stage_config(preset: str, name: str, **changes: Any) -> StageConfig:
    """A stage of a preset ("custom" takes the cpu-small values), with fields replaced."""
    table = PRESETS.get("cpu-small" if preset == "custom" else preset)
    if table is None:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if name not in table:
        raise ValueError(f"unknown stage {name!r}; choose from {[*STAGE_ORDER, *BASELINES]}")
    return table[name].with_(**changes)
