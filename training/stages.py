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

Hyperparameters: `paper` keeps the values of the authors' setting as far as they could
be reconstructed here without the paper's appendix at hand (LoRA 8/16 on q/v, AdamW,
cosine with warmup, lr 1e-4 for alignment and 5e-5 for joint LoRA, bf16); check them
against its Tables 6-8 before a paper-scale run. `cpu-small` and `tiny` are ours, sized
for this 2-core machine and for tests.
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
    warmup_ratio: float = 0.05
    lambda_lm: float = 1.0
    lambda_gen: float = 1.0
    lambda_ret: float = 1.0
    max_grad_norm: float = 1.0
    checkpoint_every: int = 50  # optimizer steps between resume points
    max_samples: int | None = None  # a seeded subset per run (to fit a small machine)

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


PRESETS: dict[str, dict[str, StageConfig]] = {
    "tiny": _stages(dict(epochs=4, batch_size=8, lr=3e-3),
                    dict(epochs=6, batch_size=16, lr=3e-3),
                    dict(epochs=4, batch_size=8, lr=3e-3, checkpoint_every=4)),
    # Sized for ~30 minutes on 2 cores: one LLM forward of 1k tokens takes seconds there.
    "cpu-small": _stages(dict(epochs=1, batch_size=8, lr=5e-4, checkpoint_every=10),
                         dict(epochs=4, batch_size=32, lr=2e-3, checkpoint_every=10),
                         dict(epochs=1, batch_size=8, lr=3e-4, warmup_ratio=0.1,
                              max_samples=96, checkpoint_every=4)),
    "paper": _stages(dict(epochs=1, batch_size=128, lr=1e-4, weight_decay=0.05),
                     dict(epochs=2, batch_size=64, lr=1e-4, weight_decay=0.0),
                     dict(epochs=3, batch_size=16, grad_accum=4, lr=5e-5, weight_decay=0.0)),
}


def stage_config(preset: str, name: str, **changes: Any) -> StageConfig:
    """A stage of a preset ("custom" takes the cpu-small values), with fields replaced."""
    table = PRESETS.get("cpu-small" if preset == "custom" else preset)
    if table is None:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if name not in table:
        raise ValueError(f"unknown stage {name!r}; choose from {[*STAGE_ORDER, *BASELINES]}")
    return table[name].with_(**changes)
