"""Text retrieval over the sticker library: faiss over MiniLM embeddings of Sticker.text().

Vectors are L2-normalised, so inner product is cosine similarity. The index's ids are
positions in library order; the emotion filter and exclusions are faiss ID selectors,
so a filtered search still returns k results whenever k stickers qualify.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Collection
from pathlib import Path

import faiss
import numpy as np

from engine.embeddings import TextEncoder
from engine.stickers.library import Sticker, StickerLibrary
from engine.types import Emotion

INDEX_FILE = "index.faiss"
INDEX_META_FILE = "index.json"
HNSW_THRESHOLD = 100_000  # exact search below this many stickers
QUERY_CACHE_SIZE = 2048  # encoded queries kept (384 floats each: ~3 MB)
_HNSW_M = 32
# faiss searches HNSW with efSearch 16 unless told; bench/pegs.py measured recall@10 of
# 0.98 -> 0.997 (low-rank vectors) and 0.56 -> 0.68 (random) going to 64, at ~0.1 ms more.
_HNSW_EF_SEARCH = 64


class StickerIndex:
    def __init__(self, library: StickerLibrary, encoder: TextEncoder | None,
                 index: faiss.Index, digest: str) -> None:
        self.library = library
        self.encoder = encoder
        self.index = index
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = max(index.hnsw.efSearch, _HNSW_EF_SEARCH)
        self.digest = digest
        # Queries repeat (the plan's comfort query, each sticker description a tuned LLM
        # asks for, one reply searched in several emotions): encode each once.
        self.query_vector = functools.lru_cache(maxsize=QUERY_CACHE_SIZE)(self._encode_query)
        self._ids = library.ids()
        self._position = {sid: i for i, sid in enumerate(self._ids)}
        self._by_emotion: dict[Emotion, np.ndarray] = {
            e: np.array([i for i, sid in enumerate(self._ids)
                         if library.get(sid).emotion == e], dtype=np.int64)
            for e in Emotion
        }

    @property
    def exact(self) -> bool:
        return isinstance(self.index, faiss.IndexFlat)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    # --- building and persistence -------------------------------------------
    @classmethod
    def build(cls, library: StickerLibrary, encoder: TextEncoder, *,
              hnsw_threshold: int = HNSW_THRESHOLD) -> StickerIndex:
        vectors = encoder.encode([s.text() for s in library])
        return cls.from_vectors(library, vectors, encoder, hnsw_threshold=hnsw_threshold)

    @classmethod
    def from_vectors(cls, library: StickerLibrary, vectors: np.ndarray,
                     encoder: TextEncoder | None = None, *,
                     hnsw_threshold: int = HNSW_THRESHOLD) -> StickerIndex:
        """An index over given unit vectors, one per sticker in library order (PEGS-Ret
        stores W_i of each sticker's image features); without an encoder only
        `search_vector` works."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(vectors) != len(library) or (len(vectors) and vectors.ndim != 2):
            raise ValueError(f"need one vector per sticker ({len(library)}), "
                             f"got shape {vectors.shape}")
        dim = vectors.shape[1] if vectors.ndim == 2 else encoder.dim if encoder else 1
        if len(library) >= hnsw_threshold:
            index: faiss.Index = faiss.IndexHNSWFlat(dim, _HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
        else:
            index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(vectors)
        return cls(library, encoder, index, library.digest())

    def save(self, root: Path) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / (INDEX_FILE + ".tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, root / INDEX_FILE)
        meta = {"digest": self.digest, "ids": self._ids, "dim": int(self.index.d),
                "model": str(getattr(self.encoder, "model_path", ""))}
        (root / INDEX_META_FILE).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, root: Path, library: StickerLibrary, encoder: TextEncoder, *,
             hnsw_threshold: int = HNSW_THRESHOLD) -> StickerIndex:
        """Load the saved index, or rebuild (and save) it if the library or model changed."""
        root = Path(root)
        meta_path, index_path = root / INDEX_META_FILE, root / INDEX_FILE
        if meta_path.exists() and index_path.exists():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            fresh = (meta.get("digest") == library.digest()
                     and meta.get("ids") == library.ids()
                     and meta.get("model") == str(getattr(encoder, "model_path", "")))
            if fresh:
                return cls(library, encoder, faiss.read_index(str(index_path)), meta["digest"])
        built = cls.build(library, encoder, hnsw_threshold=hnsw_threshold)
        built.save(root)
        return built

    # --- search --------------------------------------------------------------
    def search(self, query: str, *, emotion: Emotion | None = None, k: int = 5,
               exclude: Collection[str] = ()) -> list[tuple[Sticker, float]]:
        """Stickers whose description best fits `query`, best first, with cosine scores."""
        if self.encoder is None:
            raise TypeError("this index holds image vectors: use search_vector")
        return self.search_vector(self.query_vector(query), emotion=emotion, k=k,
                                  exclude=exclude)

    def _encode_query(self, query: str) -> np.ndarray:
        vector = self.encoder.encode([query])[0]
        vector.setflags(write=False)  # shared by every later search for the same words
        return vector

    def search_vector(self, vector: np.ndarray, *, emotion: Emotion | None = None,
                      k: int = 5, exclude: Collection[str] = ()) -> list[tuple[Sticker, float]]:
        if k <= 0 or len(self) == 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        norm = float(np.linalg.norm(query))
        if norm > 0:
            query = query / norm
        # The selectors hold raw pointers to each other and to the id arrays:
        # `keep` holds the Python objects alive until the search is done.
        keep: list[object] = []
        selector = None
        if emotion is not None:
            allowed = self._by_emotion[Emotion(emotion)]
            if len(allowed) == 0:
                return []
            selector = faiss.IDSelectorBatch(allowed)
            keep += [allowed, selector]
        excluded = np.array([self._position[s] for s in exclude if s in self._position],
                            dtype=np.int64)
        if len(excluded):
            batch = faiss.IDSelectorBatch(excluded)
            not_excluded = faiss.IDSelectorNot(batch)
            keep += [excluded, batch, not_excluded]
            selector = (not_excluded if selector is None
                        else faiss.IDSelectorAnd(selector, not_excluded))
            keep.append(selector)
        k = min(k, len(self))
        if selector is None:
            scores, labels = self.index.search(query, k)
        else:
            params = (faiss.SearchParametersHNSW(sel=selector, efSearch=max(_HNSW_EF_SEARCH, 2 * k))
                      if isinstance(self.index, faiss.IndexHNSW)
                      else faiss.SearchParameters(sel=selector))
            scores, labels = self.index.search(query, k, params=params)
        del keep
        return [(self.library.get(self._ids[int(i)]), float(s))
                for s, i in zip(scores[0], labels[0], strict=True) if i >= 0]
