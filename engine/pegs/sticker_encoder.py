"""A small sticker image encoder for the `cpu-small` PEGS profile.

A plain residual CNN over a sticker composited on white. It gives two views:

- `forward(pixel_values) -> [B, N, C]`: a grid of patch features (6 x 6 = 36 patches of
  192 features at the default 96 px), which a Q-Former attends over like ViT tokens;
- `embed(pixel_values) -> [B, 384]`: mean-pooled patches projected linearly into the
  MiniLM sentence-embedding space and L2-normalised, so cosine similarity with
  `engine.embeddings.TextEncoder` vectors says what a sticker means.

It is trained here (`python -m training.sticker_encoder.train`) and its weights
(~3 MB) are committed as `engine/pegs/sticker_encoder.safetensors` beside a JSON file
holding its config and the training report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from engine.media import fit_square

DEFAULT_WEIGHTS = Path(__file__).with_name("sticker_encoder.safetensors")
BASE_SIZE = 128  # training keeps stickers at this size and augments them down to image_size


@dataclass(frozen=True)
class EncoderConfig:
    image_size: int = 96
    widths: tuple[int, ...] = (24, 48, 96, 192)  # one stride-2 stage each: 96 px -> 6 x 6
    embed_dim: int = 384  # MiniLM all-MiniLM-L6-v2

    @property
    def grid(self) -> int:
        return self.image_size // 2 ** len(self.widths)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        return cls(image_size=int(data["image_size"]), widths=tuple(int(w) for w in data["widths"]),
                   embed_dim=int(data["embed_dim"]))


def config_path(weights: str | Path) -> Path:
    """The JSON file that travels with a weights file."""
    return Path(weights).with_suffix(".json")


class ConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class StickerEncoder(nn.Module):
    """pixel_values: [B, 3, S, S] floats in [0, 1], RGB on a white background."""

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or EncoderConfig()
        widths = self.config.widths
        if self.config.grid < 1:
            raise ValueError(f"image_size {self.config.image_size} too small for "
                             f"{len(widths)} stride-2 stages")
        layers: list[nn.Module] = [ConvBN(3, widths[0], stride=2)]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            # Downsample, then one residual conv: cheap enough to train on 2 CPU cores.
            layers += [ConvBN(c_in, c_out, stride=2), Residual(ConvBN(c_out, c_out))]
        self.backbone = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(widths[-1])
        self.proj = nn.Linear(widths[-1], self.config.embed_dim)
        # CLIP's learnable temperature, kept with the weights so scores stay comparable.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    # --- shape facts other modules rely on -------------------------------------------
    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def feature_dim(self) -> int:
        return self.config.widths[-1]

    @property
    def num_patches(self) -> int:
        return self.config.grid ** 2

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    # --- model -----------------------------------------------------------------------
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Patch features [B, N, C] (N = grid * grid, row-major)."""
        x = self.backbone(pixel_values * 2.0 - 1.0)  # white -> +1, black -> -1
        return self.norm(x.flatten(2).transpose(1, 2))

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """L2-normalised [B, embed_dim] vectors in MiniLM space."""
        return F.normalize(self.proj(self(pixel_values).mean(dim=1)), dim=-1)

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        return preprocess(images, self.image_size)

    @torch.no_grad()
    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        """PIL images -> float32 [B, embed_dim] unit vectors (cosine = inner product)."""
        if not images:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            return self.embed(self.preprocess(images)).numpy().astype(np.float32)
        finally:
            self.train(was_training)

    # --- persistence -----------------------------------------------------------------
    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Weights to `path` (safetensors), config (+ `extra`) to the `.json` beside it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(path))
        meta: dict[str, Any] = {"config": asdict(self.config)}
        meta.update(extra or {})
        config_path(path).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path = DEFAULT_WEIGHTS) -> StickerEncoder:
        """A trained encoder in eval mode; a clear error when the files are missing."""
        path = Path(path)
        if not path.is_file() or not config_path(path).is_file():
            raise FileNotFoundError(
                f"sticker encoder weights not found at {path} (+ .json): train them with "
                "`python -m training.sticker_encoder.train`")
        meta = json.loads(config_path(path).read_text(encoding="utf-8"))
        model = cls(EncoderConfig.from_dict(meta["config"]))
        model.load_state_dict(load_file(str(path)))
        return model.eval()


def read_report(path: str | Path = DEFAULT_WEIGHTS) -> dict[str, Any]:
    """The JSON beside a weights file: config plus whatever training wrote there."""
    return json.loads(config_path(path).read_text(encoding="utf-8"))


def square_on_white(image: Image.Image, size: int) -> Image.Image:
    """Crop transparent margins, centre on a square, resize, composite on white (RGB)."""
    # fit_square converts any mode (palette + transparency, LA, RGB, L) to RGBA first;
    # Pillow resizes RGBA premultiplied, so edges do not bleed dark fringes.
    rgba = fit_square(image, size)
    white = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def preprocess(images: list[Image.Image], image_size: int) -> torch.Tensor:
    """PIL images (any mode) -> float32 [B, 3, S, S] in [0, 1] on white."""
    if not images:
        return torch.zeros((0, 3, image_size, image_size))
    arrays = [np.asarray(square_on_white(im, image_size), dtype=np.uint8) for im in images]
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return batch.float().div_(255.0).contiguous()


# --- training views (used by training.sticker_encoder.train) -----------------------
def to_base(images: Sequence[Image.Image], size: int = BASE_SIZE) -> torch.Tensor:
    """uint8 [N, 4, size, size]: premultiplied RGB + alpha, so resampling stays clean."""
    out = torch.empty((len(images), 4, size, size), dtype=torch.uint8)
    for i, image in enumerate(images):
        a = np.asarray(fit_square(image, size), dtype=np.float32)
        a[..., :3] *= a[..., 3:] / 255.0
        out[i] = torch.from_numpy(np.rint(a).astype(np.uint8)).permute(2, 0, 1)
    return out


def augment(base: torch.Tensor, allow_flip: torch.Tensor, size: int,
            gen: torch.Generator) -> torch.Tensor:
    """Random views [B, 3, size, size] in [0, 1]: scale/position/rotation on the canvas
    (scale > 1 crops, as a random resized crop), flips where harmless, colour jitter,
    an occasional pale background, blur, resolution loss and noise."""
    b = base.shape[0]

    def u(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(b, generator=gen) * (hi - lo) + lo

    def chance(p: float) -> torch.Tensor:
        return torch.rand(b, generator=gen) < p

    x = base.float() / 255.0
    scale, aspect, angle = u(0.6, 1.3), torch.exp(u(-0.12, 0.12)), u(-15, 15) * math.pi / 180
    sx, sy = scale * aspect.sqrt(), scale / aspect.sqrt()
    flip = torch.where(chance(0.5) & allow_flip, -1.0, 1.0)
    room = (1 - scale).clamp(min=0) + 0.1
    t = torch.stack([u(-1, 1) * room, u(-1, 1) * room], dim=1)
    cos, sin = angle.cos(), angle.sin()
    # input = F^-1 S^-1 R^T (output - t): content scaled by s, rotated, shifted by t.
    m = torch.stack([torch.stack([flip * cos / sx, flip * sin / sx], 1),
                     torch.stack([-sin / sy, cos / sy], 1)], 1)
    theta = torch.cat([m, -(m @ t.unsqueeze(2))], dim=2)
    grid = F.affine_grid(theta, [b, 4, size, size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    background = torch.where(chance(0.15)[:, None], torch.rand(b, 3, generator=gen) * 0.2 + 0.8,
                             torch.ones(b, 3))
    rgb = x[:, :3] + (1 - x[:, 3:]) * background[:, :, None, None]

    rgb = rgb * u(0.8, 1.2)[:, None, None, None]  # brightness
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * u(0.8, 1.2)[:, None, None, None] + mean  # contrast
    gray = (rgb * torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1, keepdim=True)
    rgb = (gray + (rgb - gray) * u(0.7, 1.3)[:, None, None, None]).clamp(0, 1)  # saturation

    blur = chance(0.25).nonzero().squeeze(1)  # slight blur on a few
    rgb[blur] = F.avg_pool2d(F.pad(rgb[blur], (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    low = chance(0.25).nonzero().squeeze(1)  # JPEG-ish loss of detail: down and up again
    side = int(size * float(u(0.45, 0.8)[0]))
    rgb[low] = F.interpolate(F.interpolate(rgb[low], size=side, mode="bilinear", antialias=True),
                             size=size, mode="bilinear")
    noise = torch.randn(rgb.shape, generator=gen) * u(0.0, 0.03)[:, None, None, None]
    return (rgb + noise).clamp(0, 1)
