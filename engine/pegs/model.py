"""PEGS (PErceive and Generate Stickers, arXiv 2402.01679): a chat LLM that reads
stickers and answers with text plus [IMG] tokens that become a sticker.

    images --VisionTower--> 32 query embeddings spliced at each <image> placeholder
    LLM (frozen, LoRA + trainable [IMG] rows) --> text ... [IMG1]..[IMGr] ... text
    hidden([IMG1..IMGk])   --W_t--> retrieval embedding (PEGS-Ret, vs W_i(sticker))
    hidden([IMGk+1..IMGr]) --FeatureMapper--> SD prompt_embeds (PEGS-Gen / PEGS-RAG)
    L = lambda_lm * L_lm + lambda_gen * L_gen + lambda_ret * L_ret

Components are passed in (diffusers style); `from_config` builds them from a config.
Placeholders: a prompt holds one `<image>` per image; `encode` repeats it
`num_query_tokens` times, so splicing is a masked scatter and padding stays trivial.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from engine.llm import FALLBACK_CHAT_TEMPLATE, stop_token_ids
from engine.pegs.config import PegsConfig
from engine.pegs.heads import FeatureMapper, RetrievalHeads
from engine.pegs.vision import VisionTower, build_vision_tower, tower_from_encoder

if TYPE_CHECKING:
    from engine.pegs.generation import PegsGeneration

log = logging.getLogger(__name__)

IGNORE = -100
Images = torch.Tensor | list[Image.Image] | None
CATEGORIES = ("lora", "img_rows", "qformer", "projection", "retrieval", "mapper")


@dataclass
class PegsOutput:
    loss: torch.Tensor | None
    lm_loss: torch.Tensor | None
    ret_loss: torch.Tensor | None
    gen_loss: torch.Tensor | None
    logits: torch.Tensor
    ret_embeddings: torch.Tensor | None  # [N, ret_dim] unit vectors, one per [IMG] block
    gen_embeddings: torch.Tensor | None  # [N, gen_seq_len, gen_dim]
    sticker_embeddings: torch.Tensor | None = None  # W_i(sticker_features), when given


def load_llm(config: PegsConfig) -> tuple[Any, Any]:
    """(model, tokenizer) named by `config.llm_path`; local files only."""
    if config.llm_path == "tiny":
        from engine.pegs.tiny import tiny_llm, tiny_tokenizer

        tokenizer = tiny_tokenizer()
        return tiny_llm(len(tokenizer)), tokenizer
    from engine.llm import ChatLLM, LLMConfig

    # ChatLLM's thread policy applies (1 torch thread on machines with <= 2 cores).
    chat = ChatLLM.load(LLMConfig(path=config.llm_path, cache_dir=Path(config.llm_cache_dir)))
    return chat.model, chat.tokenizer


def _module_name(root: nn.Module, module: nn.Module) -> str:
    return next(name for name, m in root.named_modules() if m is module)


class PegsModel(nn.Module):
    def __init__(self, config: PegsConfig, llm: nn.Module, tokenizer: Any,
                 vision: VisionTower | nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.image_token_id, self.img_token_ids = self._add_tokens(llm)
        self.llm = self._wrap_lora(llm)
        hidden = llm.get_input_embeddings().weight.shape[1]
        if vision is None:
            vision = build_vision_tower(config, hidden)
        elif not isinstance(vision, VisionTower):
            vision = tower_from_encoder(config, vision, hidden)
        if config.freeze_qformer:
            vision.qformer.requires_grad_(False)
            vision.query_tokens.requires_grad_(False)
        self.vision = vision
        self.ret = RetrievalHeads(hidden, config.sticker_feature_dim, config.ret_dim)
        self.mapper = FeatureMapper(hidden, config.gen_dim, config.gen_seq_len,
                                    width=config.mapper_dim, layers=config.mapper_layers,
                                    heads=config.mapper_heads)
        self.stop_ids = stop_token_ids(llm, tokenizer)

    @classmethod
    def from_config(cls, config: PegsConfig) -> PegsModel:
        """Frozen backbones from the config's paths/presets, fresh trainable parts."""
        llm, tokenizer = load_llm(config)
        return cls(config, llm, tokenizer)

    # --- construction helpers -----------------------------------------------------------------
    def _add_tokens(self, llm: nn.Module) -> tuple[int, list[int]]:
        """Add <image> and [IMG1..r] to the vocabulary; new rows start at the mean of the old
        ones plus seeded noise, so a reload onto a fresh backbone reproduces them exactly."""
        tok, cfg = self.tokenizer, self.config
        wanted = [cfg.image_token, *cfg.img_tokens]
        vocab = tok.get_vocab()
        new = [t for t in wanted if t not in vocab]
        if new:
            tok.add_tokens(new, special_tokens=True)  # special: never split, skipped on decode
        ids = tok.convert_tokens_to_ids(wanted)
        old = llm.get_input_embeddings().weight.shape[0]
        size = max(len(tok), max(ids) + 1)
        if size > old:
            llm.resize_token_embeddings(size, mean_resizing=False)
            generator = torch.Generator().manual_seed(0)
            tables = {id(t.weight): t.weight for t in
                      (llm.get_input_embeddings(), llm.get_output_embeddings()) if t is not None}
            with torch.no_grad():
                for weight in tables.values():
                    base = weight[:old].float()
                    noise = torch.randn(size - old, weight.shape[1], generator=generator)
                    weight[old:] = (base.mean(0) + 0.1 * base.std() * noise).to(weight.dtype)
        return ids[0], ids[1:]

    def _wrap_lora(self, llm: nn.Module) -> nn.Module:
        """LoRA on the attention projections; only the [IMG] rows of the embedding (and of an
        untied output head) train, via peft's `trainable_token_indices`."""
        from peft import LoraConfig, get_peft_model

        cfg = self.config
        llm.requires_grad_(False)
        embed, head = llm.get_input_embeddings(), llm.get_output_embeddings()
        rows = {_module_name(llm, embed).split(".")[-1]: list(self.img_token_ids)}
        if head is not None and head.weight is not embed.weight:
            rows[_module_name(llm, head).split(".")[-1]] = list(self.img_token_ids)
        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=list(cfg.lora_target_modules),
                          trainable_token_indices=rows, task_type="CAUSAL_LM")
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(llm, lora)

    # --- parameters -------------------------------------------------------------------------
    def parameter_categories(self) -> dict[str, list[str]]:
        """Trainable parameter names by part; raises if anything else is trainable."""
        groups: dict[str, list[str]] = {c: [] for c in CATEGORIES}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if "lora_" in name:
                groups["lora"].append(name)
            elif "trainable_tokens_delta" in name:
                groups["img_rows"].append(name)
            elif name.startswith(("vision.qformer.", "vision.query_tokens")):
                groups["qformer"].append(name)
            elif name.startswith("vision.proj."):
                groups["projection"].append(name)
            elif name.startswith("ret."):
                groups["retrieval"].append(name)
            elif name.startswith("mapper."):
                groups["mapper"].append(name)
            else:
                raise RuntimeError(f"unexpected trainable parameter {name}")
        return groups

    def trainable_parameter_names(self) -> list[str]:
        return [n for names in self.parameter_categories().values() for n in names]

    def train(self, mode: bool = True) -> PegsModel:
        super().train(mode)
        self.vision.train(mode)  # keeps its frozen encoder in eval mode
        return self

    @contextmanager
    def merged_img_rows(self) -> Iterator[None]:
        """For inference: write the trained [IMG] rows into the embedding tables, restore
        the original rows afterwards (exact: rows are copied, not added). Unmerged, peft
        rebuilds the whole table on every call: on SmolLM2 (1 thread) a decoding step took
        200 ms that way against 59 ms merged."""
        from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

        layers = [m for m in self.llm.modules()
                  if isinstance(m, TrainableTokensLayer) and not m.merged]
        for layer in layers:
            layer.merge()
        try:
            yield
        finally:
            for layer in layers:
                layer.unmerge()

    @property
    def device(self) -> torch.device:
        return self.ret.logit_scale.device

    @property
    def sticker_text(self) -> str:
        """The [IMG1]..[IMGr] block as text, for writing training targets."""
        return "".join(self.config.img_tokens)

    # --- inputs -----------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """Token ids with each <image> repeated `num_query_tokens` times."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        q = self.vision.num_query_tokens
        return [t for i in ids for t in ([i] * q if i == self.image_token_id else [i])]

    def encode(self, prompts: list[str], targets: list[str] | None = None, *,
               padding_side: str = "right", add_eos: bool = True) -> dict[str, torch.Tensor]:
        """input_ids / attention_mask (and labels when targets are given: only the target
        tokens, [IMG] ones included, count towards L_lm). Left padding for generation."""
        rows, labels = [], []
        for i, prompt in enumerate(prompts):
            ids = self.tokenize(prompt)
            target: list[int] = []
            if targets is not None:
                target = self.tokenizer(targets[i], add_special_tokens=False)["input_ids"]
                if add_eos:
                    target = [*target, self.tokenizer.eos_token_id]
            rows.append(ids + target)
            labels.append([IGNORE] * len(ids) + target)
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        batch = {"input_ids": [], "attention_mask": [], "labels": []}
        for ids, lab in zip(rows, labels, strict=True):
            fill = width - len(ids)
            left = padding_side == "left"
            batch["input_ids"].append(([pad] * fill + ids) if left else (ids + [pad] * fill))
            batch["attention_mask"].append(([0] * fill + [1] * len(ids)) if left
                                           else ([1] * len(ids) + [0] * fill))
            batch["labels"].append(([IGNORE] * fill + lab) if left else (lab + [IGNORE] * fill))
        out = {k: torch.tensor(v, dtype=torch.long, device=self.device) for k, v in batch.items()}
        if targets is None:
            del out["labels"]
        return out

    def pixel_values(self, images: Images) -> torch.Tensor | None:
        if images is None or (isinstance(images, list) and not images):
            return None
        if isinstance(images, list):
            images = self.vision.preprocess(images)
        return images.to(self.device)

    def embed_inputs(self, input_ids: torch.Tensor, images: Images = None) -> torch.Tensor:
        """Token embeddings with each image's projected queries written over its run of
        placeholders; images in reading order (row by row, left to right)."""
        embeds = self.llm.get_input_embeddings()(input_ids)
        slots = input_ids == self.image_token_id
        pixels = self.pixel_values(images)
        count = int(slots.sum())
        if count == 0 and pixels is None:
            return embeds
        feats = self.vision(pixels) if pixels is not None else None
        if feats is None or count != feats.shape[0] * feats.shape[1]:
            given = 0 if feats is None else feats.shape[0]
            raise ValueError(f"{count} image placeholder tokens for {given} images "
                             f"x {self.vision.num_query_tokens} queries")
        return embeds.masked_scatter(slots.unsqueeze(-1), feats.to(embeds.dtype))

    def sticker_blocks(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row, start) of every [IMG1]..[IMGr] block; an incomplete block is an error."""
        rows, starts = (input_ids == self.img_token_ids[0]).nonzero(as_tuple=True)
        r = len(self.img_token_ids)
        expected = torch.tensor(self.img_token_ids, device=input_ids.device)
        span = starts[:, None] + torch.arange(r, device=input_ids.device)
        if len(rows) and (span.max() >= input_ids.shape[1]
                          or not bool((input_ids[rows[:, None], span] == expected).all())):
            raise ValueError(f"every [IMG1] must be followed by [IMG2]..[IMG{r}]")
        return rows, starts

    def block_hidden(self, hidden: torch.Tensor, rows: torch.Tensor,
                     starts: torch.Tensor) -> torch.Tensor:
        span = starts[:, None] + torch.arange(len(self.img_token_ids), device=hidden.device)
        return hidden[rows[:, None], span]  # [N, r, H]

    # --- training forward ---------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                images: Images = None, labels: torch.Tensor | None = None,
                sticker_features: torch.Tensor | None = None,
                sticker_ids: torch.Tensor | None = None,
                gen_targets: torch.Tensor | None = None,
                sticker_targets: torch.Tensor | None = None) -> PegsOutput:
        """One pass. Per [IMG] block (row-major order) `sticker_features[n]` is the target
        sticker's features and `gen_targets[n]` the SD embedding of its caption; each loss
        is computed only when its targets are given. With `sticker_targets`,
        `sticker_features` holds the whole library instead and block n's sticker is row
        `sticker_targets[n]` (library-wide negatives)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        embeds = self.embed_inputs(input_ids, images)
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # left padding safe
        out = self.llm(inputs_embeds=embeds, attention_mask=attention_mask,
                       position_ids=positions, output_hidden_states=True, use_cache=False)
        logits = out.logits
        lm_loss = ret_loss = gen_loss = None
        if labels is not None and bool((labels[:, 1:] != IGNORE).any()):
            lm_loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(),
                                      labels[:, 1:].flatten(), ignore_index=IGNORE)
        rows, starts = self.sticker_blocks(input_ids)
        ret_emb = gen_emb = sticker_emb = None
        if len(rows):
            block = self.block_hidden(out.hidden_states[-1], rows, starts)
            k = self.config.num_ret_tokens
            ret_emb = self.ret.text_embed(block[:, :k])
            gen_emb = self.mapper(block[:, k:])
        if sticker_features is not None:
            blocks = len(sticker_features) if sticker_targets is None else len(sticker_targets)
            if ret_emb is None or blocks != len(ret_emb):
                raise ValueError(f"{blocks} sticker targets for {len(rows)} [IMG] blocks")
            sticker_emb = self.encode_stickers(sticker_features, grad=True)
            ret_loss = (self.ret.loss(ret_emb, sticker_emb, sticker_ids)
                        if sticker_targets is None
                        else self.ret.library_loss(ret_emb, sticker_emb, sticker_targets))
        if gen_targets is not None:
            if gen_emb is None or gen_targets.shape != gen_emb.shape:
                made = None if gen_emb is None else tuple(gen_emb.shape)
                raise ValueError(f"gen_targets {tuple(gen_targets.shape)} do not match the "
                                 f"mapper output {made}")
            gen_loss = self.mapper.loss(gen_emb, gen_targets.to(self.device))
        cfg = self.config
        parts = [(cfg.lambda_lm, lm_loss), (cfg.lambda_gen, gen_loss), (cfg.lambda_ret, ret_loss)]
        present = [w * loss for w, loss in parts if loss is not None]
        total = torch.stack(present).sum() if present else None
        return PegsOutput(total, lm_loss, ret_loss, gen_loss, logits, ret_emb, gen_emb, sticker_emb)

    # --- inference ------------------------------------------------------------------------------
    def encode_stickers(self, features: torch.Tensor, *, grad: bool = False) -> torch.Tensor:
        """Sticker features [N, sticker_feature_dim] -> unit vectors [N, ret_dim] (W_i), the
        vectors a sticker index stores; a reply's ret_embedding is searched against them."""
        if features.shape[-1] != self.config.sticker_feature_dim:
            raise ValueError(f"sticker features are {features.shape[-1]} wide but "
                             f"PegsConfig.sticker_feature_dim is {self.config.sticker_feature_dim}")
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            return self.ret.sticker_embed(features.to(self.device))

    @torch.no_grad()
    def sticker_features(self, images: Images) -> torch.Tensor:
        """The frozen vision encoder's per-sticker features (what W_i reads)."""
        return self.vision.sticker_features(self.pixel_values(images))

    def format_prompt(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)

    def generate(self, conversations: list[list[dict[str, str]]],
                 images: list[list[Image.Image]] | None = None, *,
                 allow_sticker: bool | list[bool] = True,
                 force_sticker: bool | list[bool] = False, max_new_tokens: int = 40,
                 temperature: float = 0.7, top_p: float = 0.9,
                 seed: int = 0) -> list[PegsGeneration]:
        """Replies (text, then maybe a sticker, then maybe more text): see generation.py."""
        from engine.pegs.generation import generate

        return generate(self, conversations, images, allow_sticker=allow_sticker,
                        force_sticker=force_sticker, max_new_tokens=max_new_tokens,
                        temperature=temperature, top_p=top_p, seed=seed)
