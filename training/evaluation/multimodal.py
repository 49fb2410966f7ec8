"""Multimodal metrics of the STICKERCONV paper (Table 2): sticker frequency, MM-Relevance
and f-MMr.

Shared text-sticker space: MiniLM (all-MiniLM-L6-v2, 384-d) sentence embeddings for
the reply text, and `engine.pegs.sticker_encoder.StickerEncoder` embeddings for the
sticker image; that encoder is trained here to map sticker images into MiniLM's space,
so their cosine says how well the sticker fits the words. The paper used CLIP-like
image-text similarity, which is not available offline: the absolute numbers are not
comparable with its Table 2, only the ranking of systems measured here.

- Freq: the share of replies that carry a sticker.
- MMr (MM-Relevance): the mean over replies with a sticker of max(0, cos(text, sticker)),
  clipped at 0 like CLIPScore.
- f-MMr: MMr discounted for replies that send too few stickers. The paper's Eq. 11 writes
  (1 - α(1 - f)) · MMr with α = 0.8, but its own Table 2 is reproduced only by a penalty
  of 0.2 (Vicuna-tool: f = 0.141, MMr = 0.725 gives 0.227 with 0.8 and 0.600 with 0.2,
  the table says 0.602), so `f_mmr` defaults to `penalty=0.2`; 0.8 is available explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from training.evaluation.items import EvalItem

PAPER_EQ11_ALPHA = 0.8
TABLE2_PENALTY = 0.2


def f_mmr(mmr: float, freq: float, penalty: float = TABLE2_PENALTY) -> float:
    """f-MMr = (1 - penalty · (1 - freq)) · MMr; penalty 0.2 reproduces the paper's Table 2."""
    if not 0.0 <= freq <= 1.0:
        raise ValueError(f"sticker frequency must lie in [0, 1], got {freq}")
    return (1.0 - penalty * (1.0 - freq)) * mmr


def sticker_frequency(items: Sequence[EvalItem]) -> float:
    """The share of replies with a sticker (0 for no replies)."""
    return sum(item.has_sticker for item in items) / len(items) if items else 0.0


class StickerImages:
    """Sticker image embeddings, computed once per sticker id or file."""

    def __init__(self, sticker_encoder, library=None) -> None:
        self.sticker_encoder = sticker_encoder
        self.library = library
        self._cache: dict[str, np.ndarray] = {}

    def _path(self, item: EvalItem) -> Path:
        if item.sticker_path:
            return Path(item.sticker_path)
        if self.library is None:
            raise ValueError("a sticker library is needed to find sticker " + str(item.sticker_id))
        return self.library.png_file(item.sticker_id)

    def embed(self, items: Sequence[EvalItem], batch_size: int = 64) -> np.ndarray:
        """[len(items), dim] unit vectors for items that all have a sticker."""
        keys = [str(self._path(item)) for item in items]
        missing = sorted({k for k in keys if k not in self._cache})
        for start in range(0, len(missing), batch_size):
            chunk = missing[start:start + batch_size]
            images = []
            for key in chunk:
                with Image.open(key) as image:
                    images.append(image.convert("RGBA"))
            for key, vector in zip(chunk, self.sticker_encoder.encode_images(images),
                                   strict=True):
                self._cache[key] = vector
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys])


def relevance_scores(items: Sequence[EvalItem], text_encoder, images: StickerImages
                     ) -> list[float]:
    """max(0, cosine) between each stickered reply's text and its sticker."""
    with_sticker = [item for item in items if item.has_sticker]
    if not with_sticker:
        return []
    texts = text_encoder.encode([item.text for item in with_sticker])
    stickers = images.embed(with_sticker)
    return [max(0.0, float(c)) for c in np.sum(texts * stickers, axis=1)]


def multimodal_metrics(items: Sequence[EvalItem], text_encoder, images: StickerImages,
                       penalty: float = TABLE2_PENALTY) -> dict[str, float]:
    """Freq, MMr and f-MMr of one system's replies (MMr is 0 when none has a sticker)."""
    freq = sticker_frequency(items)
    scores = relevance_scores(items, text_encoder, images)
    mmr = float(np.mean(scores)) if scores else 0.0
    return {"freq": freq, "mmr": mmr, "f_mmr": f_mmr(mmr, freq, penalty),
            "n_with_sticker": float(len(scores))}
