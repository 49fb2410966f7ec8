"""PEGS replies decoded by CTranslate2 (int8) for turns without pictures.

PEGS changes its LLM (LoRA on the attention, the `<image>` and [IMG1..r] rows), so the
fast copy is made from the trained model: LoRA merged and [IMG] rows written into a copy
of the weights, that copy converted to CTranslate2 int8 with the extended vocabulary, and
cached under the model cache by a hash of what was trained (a new checkpoint version gets
its own copy; `python -m engine.fast_llm` makes it ahead of time).

Decoding follows engine/pegs/generation.py: text is sampled with `<image>` and
[IMG2..r] banned, and [IMG1] too where no sticker is allowed; a row that samples [IMG1]
(or, when its sticker is overdue, would stop without one) gets [IMG2..r] appended and its
text goes on after the block. The [IMG] hidden states come from one CTranslate2 forward
pass over prompt + text + block: it returns the logits, and with a bias-free output head
logits = W h, so h is the least-squares solution of W h = logits (exact up to int8
rounding: cosine 0.99 per position and 0.999 for the retrieval embedding against the
torch model, measured on SmolLM2). Turns with pictures need image embeddings in the
input, which CTranslate2 does not take: they stay on torch.

Sampling is seeded once per process (CTranslate2 keeps one random stream per thread), so
unlike the torch path a sampled reply is not reproducible per input; greedy is.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import save_file

from engine.fast_llm import QUANTIZATION, convert, default_threads
from engine.pegs.generation import PegsGeneration, _decode

if TYPE_CHECKING:
    from engine.pegs.model import PegsModel

log = logging.getLogger(__name__)

KEEP_COPIES = 3


def trained_key(model: PegsModel) -> str:
    """A hash of the LLM's trained parts (LoRA, [IMG] rows) and the backbone's name."""
    import ctranslate2

    digest = hashlib.sha256(f"{model.config.llm_path}|{ctranslate2.__version__}".encode())
    for name, param in sorted(model.llm.named_parameters()):
        if "lora_" in name or "trainable_tokens" in name:
            digest.update(name.encode())
            digest.update(param.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def export_merged(model: PegsModel, folder: Path) -> None:
    """The LLM with LoRA merged and the [IMG] rows written in, as a plain HF folder."""
    with model.merged_img_rows():
        merged = copy.deepcopy(model.llm).merge_and_unload()
    head, embed = merged.get_output_embeddings(), merged.get_input_embeddings()
    tied = head is not None and head.weight is embed.weight
    state = {name: tensor.detach().contiguous() for name, tensor in merged.state_dict().items()
             if not (tied and name == "lm_head.weight")}  # safetensors refuses shared memory
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    merged.config.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)


def prune(cache_dir: Path, keep: Path, copies: int = KEEP_COPIES) -> None:
    """Delete all but the `copies` most recently used PEGS copies (one per checkpoint
    version trained, 135 MB each for cpu-small); `keep` always stays."""
    found = sorted(cache_dir.glob(f"pegs-*-ct2-{QUANTIZATION}"),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in found if p != keep][copies - 1:]:
        shutil.rmtree(old, ignore_errors=True)
        log.info("deleted the PEGS CTranslate2 copy %s (not used lately)", old.name)


class FastPegsDecoder:
    """`PegsModel.generate` for picture-free turns, on a CTranslate2 copy of its LLM."""

    def __init__(self, model: PegsModel, generator: Any, key: str, cache_dir: Path,
                 threads: int | None = None) -> None:
        self.model = model
        self.generator = generator
        self.key = key
        self.cache_dir, self.threads = Path(cache_dir), threads
        self.target = self.cache_dir / f"pegs-{key}-ct2-{QUANTIZATION}"
        self._lock = threading.Lock()
        # The head's own table (the largest tensor under peft's wrapper: reading `.weight`
        # through the wrapper builds a merged copy of the table, 0.06 s a call) holds the
        # backbone's rows for the added tokens outside merged_img_rows(); their trained
        # rows are kept here.
        self._table = max(model.llm.get_output_embeddings().parameters(),
                          key=lambda p: p.numel())
        self._rows = torch.tensor([model.image_token_id, *model.img_token_ids])
        with torch.no_grad(), model.merged_img_rows():
            weight = model.llm.get_output_embeddings().weight.detach().float()
            self._chol = torch.linalg.cholesky((weight.T @ weight).double())
            self._trained_rows = weight[self._rows].clone()

    @classmethod
    def load(cls, model: PegsModel, cache_dir: Path, threads: int | None = None,
             seed: int = 0) -> FastPegsDecoder:
        import ctranslate2

        head = model.llm.get_output_embeddings()
        if getattr(head, "bias", None) is not None:
            raise ValueError("the fast PEGS decoder needs an output head without bias")
        key = trained_key(model)
        target = Path(cache_dir) / f"pegs-{key}-ct2-{QUANTIZATION}"
        if not (target / "model.bin").is_file():
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=cache_dir) as folder:
                export_merged(model, Path(folder))
                convert(Path(folder), target)
            prune(Path(cache_dir), keep=target)
        os.utime(target)  # most recently used: kept by prune()
        ctranslate2.set_random_seed(seed)  # takes effect at the stream's first use
        generator = ctranslate2.Generator(str(target), device="cpu", compute_type=QUANTIZATION,
                                          intra_threads=default_threads(threads))
        log.info("PEGS decodes picture-free turns on CTranslate2 (%s)", target.name)
        return cls(model, generator, key, cache_dir, threads)

    def stale(self) -> bool:
        """True when the model's trained weights changed (a new checkpoint version)."""
        return trained_key(self.model) != self.key

    def reload(self) -> FastPegsDecoder:
        """A decoder for the model's current weights."""
        return FastPegsDecoder.load(self.model, self.cache_dir, self.threads)

    # --- decoding ---------------------------------------------------------------------------
    def generate(self, conversations: list[list[dict[str, str]]], *, allow_sticker: list[bool],
                 force_sticker: list[bool], max_new_tokens: int = 40,
                 temperature: float = 0.7, top_p: float = 0.9) -> list[PegsGeneration]:
        model = self.model
        img, stops = list(model.img_token_ids), set(model.stop_ids)
        prompts = [model.tokenizer(model.format_prompt(c), add_special_tokens=False)
                   .input_ids for c in conversations]
        n, sampling = len(prompts), (max_new_tokens, temperature, top_p)
        first: list[list[int]] = [[] for _ in range(n)]
        with self._lock:
            for allow in (True, False):
                rows = [i for i in range(n) if allow_sticker[i] == allow]
                banned = [model.image_token_id, *img[1:]] + ([] if allow else [img[0]])
                ends = [*stops, img[0]] if allow else [*stops]
                for i, ids in zip(rows, self._sample([prompts[i] for i in rows], sampling,
                                                     ends, banned), strict=True):
                    first[i] = ids
            plans = [self._plan(ids, force, max_new_tokens, img[0], stops)
                     for ids, force in zip(first, force_sticker, strict=True)]
            go_on = [i for i, p in enumerate(plans) if p["sticker"] and p["left"] > 0]
            budget = max((plans[i]["left"] for i in go_on), default=0)
            more = self._sample([prompts[i] + plans[i]["before"] + img for i in go_on],
                                (budget, temperature, top_p), list(stops),
                                [model.image_token_id, *img])
            for i, ids in zip(go_on, more, strict=True):
                left = plans[i]["left"]
                plans[i]["after"] = ids[:left]
                plans[i]["truncated"] = not (ids[:left] and ids[:left][-1] in stops)
            return [self._result(prompt, plan, stops) for prompt, plan in
                    zip(prompts, plans, strict=True)]

    @staticmethod
    def _plan(ids: list[int], force: bool, budget: int, img1: int,
              stops: set[int]) -> dict[str, Any]:
        """What the first pass left: text before, whether a sticker follows, tokens left."""
        last = ids[-1] if ids else None
        if last == img1 or (last in stops and force):  # the stop is replaced by the sticker
            left = budget - len(ids)
            return {"before": ids[:-1], "sticker": True, "left": left, "stop": [],
                    "after": [], "truncated": left <= 0}
        if last in stops:
            return {"before": ids[:-1], "sticker": False, "left": 0, "stop": [last],
                    "after": [], "truncated": False}
        return {"before": ids, "sticker": force, "left": 0, "stop": [], "after": [],
                "truncated": True}  # out of budget: an overdue sticker ends the reply

    def _result(self, prompt: list[int], plan: dict[str, Any], stops: set[int]
                ) -> PegsGeneration:
        model, tok = self.model, self.model.tokenizer
        img, k = list(model.img_token_ids), model.config.num_ret_tokens
        ret = gen = None
        block: list[int] = []
        if plan["sticker"]:
            block = img
            hidden = self._block_hidden(prompt + plan["before"] + img)[None]
            with torch.no_grad():
                ret = model.ret.text_embed(hidden[:, :k])[0]
                gen = model.mapper(hidden[:, k:])[0]
        after = [t for t in plan["after"] if t not in stops]
        count = len(plan["before"]) + len(plan["stop"]) + len(block) + len(plan["after"])
        return PegsGeneration(_decode(tok, plan["before"]), _decode(tok, after), ret, gen,
                              count, plan["truncated"])

    def _sample(self, prefixes: list[list[int]], sampling: tuple[int, float, float],
                ends: list[int], banned: list[int]) -> list[list[int]]:
        budget, temperature, top_p = sampling
        if not prefixes or budget <= 0:
            return [[] for _ in prefixes]
        tok = self.model.tokenizer
        options = ({"sampling_topk": 0, "sampling_topp": top_p,
                    "sampling_temperature": temperature} if temperature > 0
                   else {"sampling_topk": 1})
        results = self.generator.generate_batch(
            [tok.convert_ids_to_tokens(p) for p in prefixes], max_length=budget,
            end_token=ends, return_end_token=True, include_prompt_in_result=False,
            suppress_sequences=[[t] for t in tok.convert_ids_to_tokens(banned)], **options)
        return [list(r.sequences_ids[0]) for r in results]

    def _block_hidden(self, ids: list[int]) -> torch.Tensor:
        """Last-layer hidden states [r, H] at the [IMG] block closing `ids`, from logits."""
        r = len(self.model.img_token_ids)
        tokens = self.model.tokenizer.convert_ids_to_tokens(ids)
        logits = torch.from_numpy(np.array(self.generator.forward_batch([tokens]))[0, -r:])
        logits = logits.float()
        with torch.no_grad():
            weight = self._table.detach().float()
            rhs = logits @ weight  # W^T l for each position, then the trained rows' part
            rhs += logits[:, self._rows] @ (self._trained_rows - weight[self._rows])
        return torch.cholesky_solve(rhs.double().T, self._chol).T.float()
