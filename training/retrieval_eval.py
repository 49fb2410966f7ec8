"""Sticker retrieval on held-out dialogues: does the reply's [IMG] embedding find the
sticker the dialogue actually sent?

For every held-out system turn with a sticker, the context and the reply text are fed
with the [IMG] block after them (teacher forcing, as in training); W_t of the block is
ranked against W_i of every library sticker. Reported: top-1 and top-10 accuracy, mean
rank, and emotion agreement (the top-1 sticker has the sent sticker's emotion).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.pegs.model import PegsModel
from engine.pegs.reply import special_pattern
from training.batches import StickerFeatures, load_image, prompt_text
from training.data import Sample


@torch.no_grad()
def retrieval_metrics(model: PegsModel, samples: list[Sample], stickers: StickerFeatures,
                      batch_size: int = 8) -> dict[str, float]:
    samples = [s for s in samples if s.sticker_id is not None]
    if not samples:
        return {}
    was_training = model.training
    model.eval()
    ids, features = stickers.all()
    library = model.encode_stickers(features)
    position = {sticker_id: i for i, sticker_id in enumerate(ids)}
    emotions = [stickers.library.get(i).emotion.value for i in ids]
    special = special_pattern(model)
    ranks, agree = [], []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        prompts = [prompt_text(model, s, special) for s in chunk]
        targets = [f"{s.target} {model.sticker_text}".strip() for s in chunk]
        images = [load_image(p) for s in chunk for p in s.images]
        out = model(**model.encode(prompts, targets), images=images or None)
        scores = (out.ret_embeddings @ library.t()).float().cpu().numpy()
        for row, sample in zip(scores, chunk, strict=True):
            right = row[position[sample.sticker_id]]
            ranks.append(1 + int((row > right).sum()))
            agree.append(emotions[int(row.argmax())] == sample.emotion)
    model.train(was_training)
    ranks_array = np.array(ranks)
    return {"ret_top1": float(np.mean(ranks_array <= 1)),
            "ret_top10": float(np.mean(ranks_array <= 10)),
            "ret_mean_rank": float(ranks_array.mean()),
            "ret_emotion": float(np.mean(agree)), "ret_samples": len(ranks),
            "ret_library": len(ids)}
