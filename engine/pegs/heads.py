"""The output side of PEGS: what the [IMG] tokens' hidden states turn into.

- `RetrievalHeads` (PEGS-Ret, after GILL/FROMAGe): W_t maps the first k [IMG] hidden
  states and W_i maps sticker features into one shared space; cosine similarity with a
  learnable CLIP-style temperature, trained with symmetric InfoNCE.
- `FeatureMapper` (PEGS-Gen, GILL's "GILLMapper"): the remaining [IMG] hidden states
  -> `gen_seq_len` vectors in the frozen SD text encoder's space, used as
  `prompt_embeds`; trained with MSE against that encoder's embedding of the caption.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.types import Emotion

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps the temperature so logits stay <= 100


class RetrievalHeads(nn.Module):
    def __init__(self, llm_hidden: int, feature_dim: int, ret_dim: int) -> None:
        super().__init__()
        self.text_proj = nn.Linear(llm_hidden, ret_dim)  # W_t
        self.sticker_proj = nn.Linear(feature_dim, ret_dim)  # W_i
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def text_embed(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states of the first k [IMG] tokens [N, k, H] -> unit vectors [N, ret_dim]."""
        projected = self.text_proj(hidden.to(self.text_proj.weight.dtype))
        return F.normalize(projected.mean(dim=1), dim=-1)

    def sticker_embed(self, features: torch.Tensor) -> torch.Tensor:
        """Sticker features [N, F] -> unit vectors [N, ret_dim]."""
        return F.normalize(self.sticker_proj(features.to(self.sticker_proj.weight.dtype)), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def loss(self, text: torch.Tensor, stickers: torch.Tensor,
             sticker_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Symmetric InfoNCE over the batch; row i of `text` belongs with row i of `stickers`.

        With `sticker_ids`, rows sharing a sticker count as positives of each other (a
        batch may hold the same sticker twice; scoring the copy as a negative would push
        a reply away from its own sticker).
        """
        logits = self.scale() * text @ stickers.t()
        if sticker_ids is None:
            targets = torch.arange(len(text), device=text.device)
            return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2
        positives = (sticker_ids[:, None] == sticker_ids[None, :]).float()
        positives = positives / positives.sum(dim=1, keepdim=True)  # symmetric matrix
        t2i = -(positives * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        i2t = -(positives * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
        return (t2i + i2t) / 2

    def library_loss(self, text: torch.Tensor, library: torch.Tensor,
                     targets: torch.Tensor) -> torch.Tensor:
        """InfoNCE against every sticker of the library: row i of `text` belongs with row
        `targets[i]` of `library`. A small batch then still learns to tell its sticker from
        all the others, not only from the few other stickers that happen to share a batch."""
        logits = self.scale() * text @ library.t()
        return F.cross_entropy(logits, targets.to(logits.device))


class FeatureMapper(nn.Module):
    """[N, r-k, H] -> [N, gen_seq_len, gen_dim]: Linear in, an encoder-decoder transformer
    whose decoder reads `gen_seq_len` learned queries, Linear out."""

    def __init__(self, llm_hidden: int, gen_dim: int, gen_seq_len: int, *, width: int = 512,
                 layers: int = 4, heads: int = 4) -> None:
        super().__init__()
        self.fc_in = nn.Linear(llm_hidden, width)
        # Pre-norm layers built by hand: nn.Transformer's own encoder warns about nested
        # tensors with norm_first; the computation is the same.
        enc = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True,
                                         norm_first=True)
        dec = nn.TransformerDecoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True,
                                         norm_first=True)
        self.transformer = nn.Transformer(
            d_model=width, nhead=heads, batch_first=True,
            custom_encoder=nn.TransformerEncoder(enc, layers, norm=nn.LayerNorm(width),
                                                 enable_nested_tensor=False),
            custom_decoder=nn.TransformerDecoder(dec, layers, norm=nn.LayerNorm(width)))
        self.queries = nn.Parameter(torch.randn(1, gen_seq_len, width) * 0.02)
        self.fc_out = nn.Linear(width, gen_dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = self.fc_in(hidden.to(self.fc_in.weight.dtype))
        queries = self.queries.expand(x.shape[0], -1, -1)
        return self.fc_out(self.transformer(x, queries))

    @staticmethod
    def loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(predicted, target.to(predicted.dtype))


def caption_target(description: str, emotion: Emotion | str) -> str:
    """The text whose SD embedding the feature mapper learns to produce (L_gen target)."""
    label = emotion.value if isinstance(emotion, Emotion) else str(emotion).strip()
    text = description.strip().rstrip(".").strip()
    return f"{text}, {label} sticker" if text else f"{label} sticker"
