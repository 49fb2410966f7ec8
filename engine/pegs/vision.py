"""The input side of PEGS: image -> frozen encoder -> Q-Former -> LLM input embeddings.

As in BLIP-2, a fixed set of learned queries cross-attends over the encoder's patch
features, so every image costs the LLM exactly `num_query_tokens` positions whatever
the encoder's resolution. A linear projection maps the queries to the LLM width.

Encoders: a tiny random ViT (`tiny`), the small CNN trained here (`sticker-encoder`),
a local CLIP / SigLIP / BLIP-2 checkpoint directory (read with local_files_only), or any
nn.Module mapping pixel_values [B, 3, S, S] to patch features [B, N, C].
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel

from engine.media import fit_square
from engine.pegs.config import PegsConfig

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)


def preprocess(images: list[Image.Image], image_size: int, mean: tuple[float, ...] = HALF,
               std: tuple[float, ...] = HALF) -> torch.Tensor:
    """PIL images (any mode) -> float32 [B, 3, S, S]: transparent margins cropped, padded
    square, composited on white (stickers are drawn for light chat backgrounds), then
    normalised with the encoder's mean and std."""
    if not images:
        return torch.zeros((0, 3, image_size, image_size))
    arrays = []
    for image in images:
        rgba = fit_square(image, image_size)
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        arrays.append(np.asarray(Image.alpha_composite(white, rgba).convert("RGB")))
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    return ((batch - mean_t) / std_t).contiguous()


def patch_features(encoder: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Any encoder's output as [B, N, C] (HF models return a ModelOutput)."""
    out = encoder(pixel_values)
    feats = out if torch.is_tensor(out) else out.last_hidden_state
    if feats.dim() != 3:
        raise ValueError(f"the vision encoder must give [B, N, C] features, "
                         f"got {tuple(feats.shape)}")
    return feats


class VisionTower(nn.Module):
    """Frozen encoder + Q-Former (learned queries) + projection to the LLM width."""

    def __init__(self, encoder: nn.Module, qformer: Blip2QFormerModel,
                 query_tokens: torch.Tensor, llm_hidden: int, *, image_size: int,
                 mean: tuple[float, ...] = HALF, std: tuple[float, ...] = HALF) -> None:
        super().__init__()
        self.encoder = encoder
        self.qformer = qformer
        self.query_tokens = nn.Parameter(query_tokens.detach().clone())  # [1, Q, D]
        self.proj = nn.Linear(qformer.config.hidden_size, llm_hidden)
        self.image_size = image_size
        self.mean, self.std = tuple(mean), tuple(std)
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True) -> VisionTower:
        super().train(mode)
        self.encoder.eval()  # frozen: no dropout, batch-norm statistics stay put
        return self

    @property
    def num_query_tokens(self) -> int:
        return self.query_tokens.shape[1]

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        return preprocess(images, self.image_size, self.mean, self.std)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [B, 3, S, S] -> [B, num_query_tokens, llm_hidden]."""
        with torch.no_grad():  # frozen, and no activations kept for backward
            feats = patch_features(self.encoder, pixel_values)
        feats = feats.to(self.query_tokens.dtype)
        queries = self.query_tokens.expand(feats.shape[0], -1, -1)
        mask = torch.ones(feats.shape[:2], dtype=torch.long, device=feats.device)
        out = self.qformer(query_embeds=queries, encoder_hidden_states=feats,
                           encoder_attention_mask=mask).last_hidden_state
        return self.proj(out)

    @torch.no_grad()
    def sticker_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """One frozen vector per sticker for W_i: the sticker encoder's own embedding when
        it has one, else the encoder's pooled output, else its mean patch feature."""
        if hasattr(self.encoder, "embed"):
            return self.encoder.embed(pixel_values)
        out = self.encoder(pixel_values)
        pooled = None if torch.is_tensor(out) else getattr(out, "pooler_output", None)
        if pooled is not None:
            return pooled
        return (out if torch.is_tensor(out) else out.last_hidden_state).mean(dim=1)


# --- builders ------------------------------------------------------------------------------
def build_qformer(config: PegsConfig, encoder_dim: int) -> tuple[Blip2QFormerModel, torch.Tensor]:
    """A random Q-Former sized by the config, and its learned queries."""
    qconfig = Blip2QFormerConfig(
        hidden_size=config.qformer_hidden, num_hidden_layers=config.qformer_layers,
        num_attention_heads=config.qformer_heads, intermediate_size=4 * config.qformer_hidden,
        encoder_hidden_size=encoder_dim, cross_attention_frequency=1,
        hidden_dropout_prob=config.qformer_dropout,
        attention_probs_dropout_prob=config.qformer_dropout)
    queries = torch.randn(1, config.num_query_tokens, config.qformer_hidden) * 0.02
    return Blip2QFormerModel(qconfig), queries


def _infer_encoder_dim(encoder: nn.Module, image_size: int) -> int:
    probe = torch.zeros(1, 3, image_size, image_size)
    with torch.no_grad():
        return patch_features(encoder.eval(), probe).shape[-1]


def tower_from_encoder(config: PegsConfig, encoder: nn.Module, llm_hidden: int, *,
                       image_size: int | None = None, mean: tuple[float, ...] = HALF,
                       std: tuple[float, ...] = HALF) -> VisionTower:
    """Any encoder module + a random Q-Former sized by the config."""
    size = (image_size or getattr(encoder, "image_size", None)
            or getattr(getattr(encoder, "config", None), "image_size", None) or config.image_size)
    qformer, queries = build_qformer(config, _infer_encoder_dim(encoder, size))
    return VisionTower(encoder, qformer, queries, llm_hidden, image_size=size, mean=mean,
                       std=std)


def build_vision_tower(config: PegsConfig, llm_hidden: int) -> VisionTower:
    """The tower named by `config.vision`: "tiny", "sticker-encoder" or a local path."""
    if config.vision == "tiny":
        from engine.pegs.tiny import tiny_vit

        return tower_from_encoder(config, tiny_vit(config.image_size), llm_hidden,
                                  image_size=config.image_size)
    if config.vision == "sticker-encoder" or config.vision.endswith(".safetensors"):
        from engine.pegs.sticker_encoder import DEFAULT_WEIGHTS, StickerEncoder

        weights = DEFAULT_WEIGHTS if config.vision == "sticker-encoder" else config.vision
        encoder = StickerEncoder.load(weights)  # its own clear error when not trained yet
        # It takes [0, 1] pixels on white and normalises inside.
        return tower_from_encoder(config, encoder, llm_hidden, image_size=encoder.image_size,
                                  mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return _load_hf_vision(config, Path(config.vision).expanduser(), llm_hidden)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _load_hf_vision(config: PegsConfig, path: Path, llm_hidden: int) -> VisionTower:
    """A local CLIP / SigLIP / BLIP-2 checkpoint directory; never the hub."""
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"vision checkpoint not found at {path} (no config.json); PegsConfig.vision must be "
            f"'tiny', 'sticker-encoder' or a local CLIP/SigLIP/BLIP-2 directory")
    model_type = _read_json(path / "config.json").get("model_type", "")
    pre = _read_json(path / "preprocessor_config.json")
    pre = pre.get("image_processor", pre)  # processor_config nests it
    if model_type == "blip-2":
        encoder, qformer, queries = _load_blip2_parts(path)
        tower = VisionTower(encoder, qformer, queries, llm_hidden,
                            image_size=encoder.config.image_size,
                            mean=tuple(pre.get("image_mean", CLIP_MEAN)),
                            std=tuple(pre.get("image_std", CLIP_STD)))
        tower.qformer.requires_grad_(not config.freeze_qformer)
        tower.query_tokens.requires_grad_(not config.freeze_qformer)
        return tower
    if model_type.startswith("siglip"):
        from transformers import SiglipVisionModel as cls
        default_mean = default_std = HALF
    elif model_type.startswith("clip"):
        from transformers import CLIPVisionModel as cls
        default_mean, default_std = CLIP_MEAN, CLIP_STD
    else:
        raise ValueError(f"{path}: unsupported vision model_type {model_type!r} "
                         f"(PegsConfig.vision takes CLIP, SigLIP or BLIP-2 checkpoints)")
    with _quiet_transformers():  # a full CLIP/SigLIP folder reports its unused text tower
        encoder = cls.from_pretrained(path, local_files_only=True)
    return tower_from_encoder(config, encoder, llm_hidden,
                              image_size=encoder.config.image_size,
                              mean=tuple(pre.get("image_mean", default_mean)),
                              std=tuple(pre.get("image_std", default_std)))


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _load_blip2_parts(path: Path) -> tuple[nn.Module, Blip2QFormerModel, torch.Tensor]:
    """BLIP-2's vision model, Q-Former and queries, without loading its language model."""
    from safetensors import safe_open
    from transformers import Blip2Config, Blip2VisionModel

    blip = Blip2Config.from_pretrained(path, local_files_only=True)
    encoder = Blip2VisionModel(blip.vision_config)
    qformer = Blip2QFormerModel(blip.qformer_config)
    index = path / "model.safetensors.index.json"
    files = (sorted(set(_read_json(index)["weight_map"].values())) if index.is_file()
             else ["model.safetensors"])
    vision_sd, qformer_sd, queries = {}, {}, None
    for name in files:
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} missing (PegsConfig.vision={str(path)!r})")
        with safe_open(str(path / name), framework="pt") as f:
            for key in f.keys():
                if key.startswith("vision_model."):
                    vision_sd[key.removeprefix("vision_model.")] = f.get_tensor(key)
                elif key.startswith("qformer."):
                    qformer_sd[key.removeprefix("qformer.")] = f.get_tensor(key)
                elif key == "query_tokens":
                    queries = f.get_tensor(key)
    if queries is None:
        raise ValueError(f"{path} holds no BLIP-2 query_tokens")
    for module, state, label in ((encoder, vision_sd, "vision_model"),
                                 (qformer, qformer_sd, "qformer")):
        missing, _ = module.load_state_dict(state, strict=False)
        if missing:
            raise ValueError(f"{path}: BLIP-2 {label} weights missing {missing[:5]}...")
    return encoder.eval(), qformer, queries.float()
