"""From samples to the inputs of `PegsModel.forward` for one stage.

Sticker features come from the frozen vision encoder, so they are computed once per
sticker (`StickerFeatures`); the SD text encoder's caption embeddings (L_gen targets)
are cached the same way (`CaptionTargets`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import torch
from PIL import Image

from engine.pegs.model import PegsModel
from engine.pegs.reply import pegs_messages, special_pattern
from engine.reply_model import TOOL_ACTION
from engine.stickers import StickerLibrary
from training.data import Sample
from training.stages import StageConfig


class StickerFeatures:
    """Frozen sticker features by library id, for W_i (computed on first use)."""

    def __init__(self, model: PegsModel, library: StickerLibrary) -> None:
        self.model, self.library = model, library
        self._cache: dict[str, torch.Tensor] = {}

    def __call__(self, ids: list[str]) -> torch.Tensor:
        missing = [i for i in dict.fromkeys(ids) if i not in self._cache]
        if missing:
            images = [load_image(self.library.png_file(i)) for i in missing]
            for sticker_id, row in zip(missing, self.model.sticker_features(images),
                                       strict=True):
                self._cache[sticker_id] = row
        return torch.stack([self._cache[i] for i in ids])

    def all(self) -> tuple[list[str], torch.Tensor]:
        ids = self.library.ids()
        return ids, self(ids)


class CaptionTargets:
    """The frozen SD text encoder's embedding of each caption (L_gen targets)."""

    def __init__(self, embed: Callable[[list[str]], torch.Tensor]) -> None:
        self.embed = embed
        self._cache: dict[str, torch.Tensor] = {}

    def __call__(self, captions: list[str]) -> torch.Tensor:
        missing = [c for c in dict.fromkeys(captions) if c not in self._cache]
        if missing:
            for caption, row in zip(missing, self.embed(missing), strict=True):
                self._cache[caption] = row.detach().float().cpu()
        return torch.stack([self._cache[c] for c in captions])


def load_image(path: Any) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGBA")


def target_text(model: PegsModel, sample: Sample, stage: StageConfig, describe: str) -> str:
    """The target as the stage trains it: with the [IMG] block, the tool action, or text."""
    text = sample.target.strip()
    if sample.sticker_id is None or stage.target in ("none", "text"):
        return text
    extra = model.sticker_text if stage.target == "pegs" else TOOL_ACTION.format(describe)
    return f"{text} {extra}".strip()


def prompt_text(model: PegsModel, sample: Sample, special: re.Pattern[str]) -> str:
    """The sample's context as the model reads it, one <image> per picture."""
    messages = pegs_messages(sample.messages, len(sample.images), model.config.image_token,
                             special)
    return model.format_prompt(messages)


def make_batch(model: PegsModel, samples: list[Sample], stage: StageConfig,
               stickers: StickerFeatures, captions: CaptionTargets | None) -> dict[str, Any]:
    """Keyword arguments for `model(**batch)`; losses whose targets are absent are skipped."""
    special = special_pattern(model)
    prompts, targets, images = [], [], []
    for s in samples:
        prompts.append(prompt_text(model, s, special))
        describe = stickers.library.get(s.sticker_id).content_description if s.sticker_id \
            else ""
        targets.append(target_text(model, s, stage, describe))
        images.extend(load_image(p) for p in s.images)
    batch: dict[str, Any] = dict(model.encode(prompts, targets))
    batch["images"] = images or None
    with_sticker = [s for s in samples if s.sticker_id is not None] if stage.target == "pegs" \
        else []
    if with_sticker and stage.lambda_ret > 0 and "retrieval" in stage.trains:
        ids = [s.sticker_id for s in with_sticker]
        if stage.ret_negatives == "library":
            library_ids, batch["sticker_features"] = stickers.all()
            row = {sid: n for n, sid in enumerate(library_ids)}
            batch["sticker_targets"] = torch.tensor([row[i] for i in ids])
        else:
            batch["sticker_features"] = stickers(ids)
            numbers = {sid: n for n, sid in enumerate(dict.fromkeys(ids))}
            batch["sticker_ids"] = torch.tensor([numbers[i] for i in ids])
    if with_sticker and captions is not None and stage.lambda_gen > 0 \
            and "mapper" in stage.trains:
        batch["gen_targets"] = captions([s.caption for s in with_sticker])
    return batch
