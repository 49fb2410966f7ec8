"""The tool module: the sticker library split into N emotion-balanced vector databases.

As in Agent4SC, each session's user and system retrieve from one randomly assigned
database, so sessions differ in which stickers they can reach. Shards are dealt
emotion by emotion (a seeded shuffle, then round-robin), so every shard holds about
the same share of each emotion. The first 80 % of the shards serve train and
validation sessions, the last 20 % test sessions (80/20 of the paper's 100).

Shard-count rule: a shard should hold at least `top_k` stickers, or top-K retrieval is
meaningless. When the library has fewer than `shards * top_k` stickers, the tool uses
`max(1, len(library) // top_k)` shards instead and logs that (the 203-sticker default
pack gives 20 shards of ~10 at top-K 10).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import faiss
import numpy as np

from engine.embeddings import TextEncoder
from engine.stickers import Sticker, StickerIndex, StickerLibrary
from engine.types import Emotion

log = logging.getLogger(__name__)

DEFAULT_SHARDS = 100
DEFAULT_TOP_K = 10
TRAIN_FRACTION = 0.8


def effective_shards(library_size: int, shards: int, top_k: int) -> int:
    """The shard-count rule of the module docstring."""
    if library_size >= shards * top_k:
        return shards
    return max(1, library_size // max(1, top_k))


@dataclass
class Shard:
    id: int
    stickers: list[Sticker]
    index: faiss.IndexFlatIP

    @property
    def ids(self) -> set[str]:
        return {s.id for s in self.stickers}


class StickerTool:
    """Sharded retrieval: `search(shard, query, k)` returns that shard's best stickers."""

    def __init__(self, library: StickerLibrary, encoder: TextEncoder, *,
                 shards: int = DEFAULT_SHARDS, top_k: int = DEFAULT_TOP_K, seed: int = 0,
                 index: StickerIndex | None = None) -> None:
        self.library = library
        self.encoder = encoder
        self.top_k = top_k
        self.requested_shards = shards
        count = effective_shards(len(library), shards, top_k)
        if count != shards:
            log.info("sticker library has %d stickers < %d shards x top-%d: using %d shards",
                     len(library), shards, top_k, count)
        self.vectors = self._vectors(index)
        self.shards = self._split(count, seed)
        self.train_count = max(1, int(round(count * TRAIN_FRACTION))) if count > 1 else 1

    def _vectors(self, index: StickerIndex | None) -> dict[str, np.ndarray]:
        ids = self.library.ids()
        if index is not None and index.exact and len(index) == len(ids):
            # Reuse the library index's vectors instead of encoding the library again.
            matrix = index.index.reconstruct_n(0, len(ids))
        else:
            matrix = self.encoder.encode([self.library.get(i).text() for i in ids])
        return {sid: matrix[i] for i, sid in enumerate(ids)}

    def _split(self, count: int, seed: int) -> list[Shard]:
        rng = random.Random(seed)
        buckets: list[list[Sticker]] = [[] for _ in range(count)]
        offset = 0
        for emotion in Emotion:
            group = sorted(self.library.by_emotion(emotion), key=lambda s: s.id)
            rng.shuffle(group)
            for i, sticker in enumerate(group):
                buckets[(offset + i) % count].append(sticker)
            offset += len(group)  # the next emotion starts where this one stopped
        shards = []
        for number, stickers in enumerate(buckets):
            index = faiss.IndexFlatIP(self._dim())
            if stickers:
                index.add(np.stack([self.vectors[s.id] for s in stickers]).astype(np.float32))
            shards.append(Shard(number, stickers, index))
        return shards

    def _dim(self) -> int:
        return len(next(iter(self.vectors.values()))) if self.vectors else self.encoder.dim

    def __len__(self) -> int:
        return len(self.shards)

    def split_shards(self, split: str) -> list[int]:
        """Shard ids for 'train' (and validation), 'test', or 'all'."""
        every = list(range(len(self.shards)))
        if split == "all" or len(every) == 1:
            return every
        if split == "train":
            return every[:self.train_count]
        if split == "test":
            return every[self.train_count:]
        raise ValueError(f"split must be train, test or all, not {split!r}")

    def emotion_counts(self, shard: int) -> dict[str, int]:
        counts = {e.value: 0 for e in Emotion}
        for sticker in self.shards[shard].stickers:
            counts[sticker.emotion.value] += 1
        return counts

    def search(self, shard: int, query: str, k: int | None = None) -> list[Sticker]:
        return self.search_many(shard, [query], k)[0]

    def search_many(self, shard: int, queries: list[str], k: int | None = None
                    ) -> list[list[Sticker]]:
        part = self.shards[shard]
        k = min(k or self.top_k, len(part.stickers))
        if k == 0 or not queries:
            return [[] for _ in queries]
        vectors = self.encoder.encode(queries)
        _scores, labels = part.index.search(np.ascontiguousarray(vectors), k)
        return [[part.stickers[int(i)] for i in row if i >= 0] for row in labels]

    def similarity(self, text: str, sticker: Sticker) -> float:
        """Cosine of a message and a sticker's description (the manager's fit check)."""
        return float(self.encoder.encode([text])[0] @ self.vectors[sticker.id])

    def similarities(self, pairs: list[tuple[str, Sticker]]) -> list[float]:
        if not pairs:
            return []
        vectors = self.encoder.encode([text for text, _ in pairs])
        return [float(v @ self.vectors[s.id]) for v, (_, s) in zip(vectors, pairs, strict=True)]
