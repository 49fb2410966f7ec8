"""Shared builders for the PEGS tests: tiny models and a synthetic text-sticker task."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from PIL import Image

from engine.pegs import PegsConfig, PegsModel

ANIMALS = ["dog", "cat", "bird", "fish"]
EMOTIONS = ["happy", "sad", "angry", "scared"]
CLASSES = [(a, e) for a in ANIMALS for e in EMOTIONS]  # 16 sticker classes
TRAIN_TEMPLATES = ["my {a} is {e} .", "i feel {e} about my {a} .", "the {a} is so {e} !",
                   "{e} {a} today"]
HELD_OUT_TEMPLATES = ["wow my {a} looks very {e} !", "why is the {a} {e} ?"]


def one_thread() -> Iterator[None]:
    """Tiny models on one torch thread: their ops are too small to share, and on a busy
    2-core machine a second OpenMP thread made training ~70x slower (measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_pegs(seed: int = 0, **overrides: object) -> PegsModel:
    torch.manual_seed(seed)
    return PegsModel.from_config(PegsConfig.tiny(**overrides))


def trainable(model: PegsModel) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def images(n: int, size: int = 40) -> list[Image.Image]:
    """Distinct pictures: RGBA (half transparent) and RGB, various colours and shapes."""
    out = []
    for i in range(n):
        mode = "RGBA" if i % 2 == 0 else "RGB"
        colour = ((50 * i) % 256, (90 * i + 30) % 256, (170 * i + 60) % 256)
        image = Image.new(mode, (size, size - 4 * i), colour + ((128,) if mode == "RGBA" else ()))
        out.append(image)
    return out


def sticker_features(dim: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(len(CLASSES), dim, generator=torch.Generator().manual_seed(seed))


def synthetic(model: PegsModel, templates: list[str]) -> tuple[list[str], torch.Tensor]:
    """Prompts naming a class, each followed by the [IMG] block; and their class ids."""
    prompts, labels = [], []
    for c, (animal, emotion) in enumerate(CLASSES):
        for template in templates:
            prompts.append(f"{template.format(a=animal, e=emotion)} {model.sticker_text}")
            labels.append(c)
    return prompts, torch.tensor(labels)


def train_retrieval(model: PegsModel, features: torch.Tensor, steps: int, *, batch: int = 32,
                    lr: float = 3e-3, seed: int = 0) -> None:
    prompts, labels = synthetic(model, TRAIN_TEMPLATES)
    optimizer = torch.optim.AdamW(trainable(model), lr=lr, weight_decay=0.0)
    rng = random.Random(seed)
    model.train()
    for _ in range(steps):
        idx = rng.sample(range(len(prompts)), batch)
        inputs = model.encode([prompts[i] for i in idx])
        out = model(**inputs, sticker_features=features[labels[idx]], sticker_ids=labels[idx])
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    model.eval()


def retrieval_top1(model: PegsModel, features: torch.Tensor, templates: list[str]) -> float:
    prompts, labels = synthetic(model, templates)
    with torch.no_grad():
        out = model(**model.encode(prompts))
        scores = out.ret_embeddings @ model.encode_stickers(features).t()
    return (scores.argmax(dim=1) == labels).float().mean().item()


def train_reply(model: PegsModel, messages: list[dict[str, str]], target: str,
                steps: int = 150, lr: float = 1e-2) -> None:
    """Teach the model one reply (text, sticker block, text): L_lm only."""
    inputs = model.encode([model.format_prompt(messages)], [target])
    optimizer = torch.optim.AdamW(trainable(model), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        loss = model(**inputs).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
