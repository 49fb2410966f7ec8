"""PEGS (STICKERCONV, arXiv 2402.01679): perceive stickers, answer with text + a sticker.

    config.py      PegsConfig and the tiny / cpu-small / paper presets
    vision.py      image -> frozen encoder -> Q-Former -> LLM embeddings
    heads.py       retrieval heads (W_t, W_i, InfoNCE) and the SD feature mapper
    model.py       PegsModel: LoRA LLM + [IMG] tokens, forward with the three losses
    generation.py  decoding with [IMG] tokens: text, sticker embeddings, more text
    checkpoint.py  trained-weights-only checkpoints, versions, hot switching
    reply.py       PegsReplyModel: PEGS as the responder's reply model (ret / gen / rag)
    diffusion.py   Stable Diffusion for PEGS-Gen (text2img) and PEGS-RAG (img2img)
    composer.py    captioned stickers for profiles without diffusion weights
    sticker_encoder.py  the small image encoder of `cpu-small` (trained by
                        training/sticker_encoder/ against MiniLM)
    tiny.py        random tiny LLM / tokenizer / ViT for the `tiny` profile

Submodules import lazily (torch and transformers are heavy); the names below resolve
on first use.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub

_EXPORTS = {
    "PegsConfig": "config",
    "VisionTower": "vision",
    "preprocess": "vision",
    "build_vision_tower": "vision",
    "RetrievalHeads": "heads",
    "FeatureMapper": "heads",
    "PegsModel": "model",
    "PegsOutput": "model",
    "load_llm": "model",
    "PegsGeneration": "generation",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_weights": "checkpoint",
    "latest_version": "checkpoint",
    "list_versions": "checkpoint",
    "set_current": "checkpoint",
    "CheckpointWatcher": "checkpoint",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
