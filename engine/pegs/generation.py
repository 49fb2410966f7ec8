"""PEGS decoding: text, and a sticker when the model asks for one.

A batched hand loop over the KV cache (HF `generate` cannot force a run of tokens in
the middle of sampling). Per row: sample text; when the model samples [IMG1] (and
stickers are allowed) feed [IMG2]..[IMGr] without sampling, keep the last layer's
hidden states at those r positions, then go on sampling text after the sticker.
[IMG1] is banned when stickers are not allowed or one was already sent; the other
[IMG] tokens and the image placeholder are always banned from sampling. With
`force_sticker`, a row that would end without a sticker gets one there instead (the
responder's sticker-frequency control): at the stop token, text may still follow; at
the end of the token budget, nothing follows.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from PIL import Image

if TYPE_CHECKING:
    from engine.pegs.model import PegsModel


@dataclass
class PegsGeneration:
    text_before: str
    text_after: str
    ret_embedding: torch.Tensor | None  # [ret_dim] unit vector, when a sticker was emitted
    gen_embeds: torch.Tensor | None  # [gen_seq_len, gen_dim] SD prompt_embeds
    new_tokens: int  # every generated token: text, [IMG] and the stop token
    truncated: bool = False  # the token budget ran out before a stop token

    @property
    def has_sticker(self) -> bool:
        return self.ret_embedding is not None

    @property
    def text(self) -> str:
        return " ".join(t for t in (self.text_before, self.text_after) if t)


def limit_images(prompt: str, images: list[Image.Image], image_token: str,
                 max_images: int) -> tuple[str, list[Image.Image]]:
    """Keep the last `max_images` images of a prompt (the oldest matter least)."""
    parts = prompt.split(image_token)
    if len(parts) - 1 != len(images):
        raise ValueError(f"{len(parts) - 1} {image_token} placeholders for {len(images)} images")
    drop = max(0, len(images) - max_images)
    if not drop:
        return prompt, images
    text = "".join(parts[: drop + 1]) + "".join(image_token + p for p in parts[drop + 1:])
    return text, images[drop:]


# Top-p looks among this many most likely tokens first: sorting the whole vocabulary of
# every row at every step cost as much as the forward pass of a batch of 8 on a CPU.
TOP_CANDIDATES = 256


def _sample_rows(logits: torch.Tensor, temperature: float, top_p: float,
                 generator: torch.Generator) -> list[int]:
    """One token per row of `logits` [n, vocab]: greedy at temperature 0, else nucleus
    sampling (exact: the nucleus lies within the top candidates whenever they hold top_p
    of the mass, and the whole vocabulary is sorted when they do not)."""
    if temperature <= 0:
        return logits.argmax(-1).tolist()
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p >= 1.0:
        return torch.multinomial(probs, 1, generator=generator)[:, 0].tolist()
    top, order = probs.topk(min(TOP_CANDIDATES, probs.shape[-1]), dim=-1)
    if bool((top.sum(-1) < top_p).any()):
        top, order = probs.sort(dim=-1, descending=True)
    keep = top.cumsum(-1) - top < top_p  # always keeps the first
    pick = torch.multinomial(top * keep, 1, generator=generator)
    return order.gather(-1, pick)[:, 0].tolist()


@torch.no_grad()
def generate(model: PegsModel, conversations: list[list[dict[str, str]]],
             images: list[list[Image.Image]] | None = None, *,
             allow_sticker: bool | Sequence[bool] = True,
             force_sticker: bool | Sequence[bool] = False, max_new_tokens: int = 40,
             temperature: float = 0.7, top_p: float = 0.9,
             seed: int = 0) -> list[PegsGeneration]:
    """One reply per conversation ({"role", "content"} messages whose content may hold
    `<image>` placeholders, matched in order by `images[i]`). `allow_sticker` and
    `force_sticker` apply to every row, or give one flag per row."""
    if not conversations:
        return []
    allow_sticker = _per_row(allow_sticker, len(conversations), "allow_sticker")
    force_sticker = _per_row(force_sticker, len(conversations), "force_sticker")
    was_training = model.training
    model.eval()
    try:
        with model.merged_img_rows():
            return _generate(model, conversations, images, allow_sticker, force_sticker,
                             max_new_tokens, temperature, top_p, seed)
    finally:
        model.train(was_training)


def _per_row(flag: bool | Sequence[bool], n: int, name: str) -> list[bool]:
    flags = [bool(flag)] * n if isinstance(flag, bool) else [bool(f) for f in flag]
    if len(flags) != n:
        raise ValueError(f"{name}: {len(flags)} flags for {n} conversations")
    return flags


def _generate(model: PegsModel, conversations: list[list[dict[str, str]]],
              images: list[list[Image.Image]] | None, allow_sticker: list[bool],
              force_sticker: list[bool], max_new_tokens: int, temperature: float,
              top_p: float, seed: int) -> list[PegsGeneration]:
    cfg, tok = model.config, model.tokenizer
    prompts, pictures = [], []
    for i, messages in enumerate(conversations):
        prompt, kept = limit_images(model.format_prompt(messages),
                                    list(images[i]) if images else [], cfg.image_token,
                                    cfg.max_images)
        prompts.append(prompt)
        pictures.extend(kept)
    batch = model.encode(prompts, padding_side="left")
    mask = batch["attention_mask"]
    embeds = model.embed_inputs(batch["input_ids"], pictures or None)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                    use_cache=True, logits_to_keep=1)
    cache, logits = out.past_key_values, out.logits[:, -1].float().cpu()
    next_pos = positions[:, -1] + 1
    cache_kwarg = _cache_kwarg(model.llm.get_base_model())

    img, r, k = model.img_token_ids, len(model.img_token_ids), cfg.num_ret_tokens
    banned = torch.tensor([model.image_token_id, *img[1:]])  # sampling runs on the CPU
    stops = set(model.stop_ids)
    n = len(prompts)
    tokens: list[list[int]] = [[] for _ in range(n)]
    hidden: list[list[torch.Tensor]] = [[] for _ in range(n)]
    start: list[int | None] = [None] * n  # index of [IMG1] in tokens
    forced: list[list[int]] = [[] for _ in range(n)]
    sampled, done, truncated = [0] * n, [False] * n, [False] * n
    generator = torch.Generator().manual_seed(seed)
    embed = model.llm.get_input_embeddings()

    while True:
        # Every row's next token in one call (rows that do not sample ignore theirs).
        logits[:, banned] = float("-inf")
        no_sticker = torch.tensor([start[b] is not None or not allow_sticker[b]
                                   for b in range(n)])
        logits[no_sticker, img[0]] = float("-inf")
        choices = _sample_rows(logits, temperature, top_p, generator)
        feed = []
        for b in range(n):
            if done[b]:
                feed.append(tok.pad_token_id)
                continue
            if forced[b]:
                nxt: int | None = forced[b].pop(0)
            elif sampled[b] < max_new_tokens:
                nxt = choices[b]
                sampled[b] += 1
            else:
                nxt = None  # out of budget
                truncated[b] = True
            ending = nxt is None or nxt in stops
            if ending and force_sticker[b] and start[b] is None:
                nxt = img[0]  # the stop token (if any) is replaced by the sticker
            if nxt == img[0]:
                start[b] = len(tokens[b])
                forced[b] = list(img[1:])
            elif ending:
                if nxt is not None:
                    tokens[b].append(nxt)
                done[b] = True
                feed.append(tok.pad_token_id)
                continue
            tokens[b].append(nxt)
            feed.append(nxt)
        if all(done):
            break
        ids = torch.tensor(feed, device=model.device)[:, None]
        mask = torch.cat([mask, torch.ones_like(ids)], dim=1)
        out = model.llm(inputs_embeds=embed(ids), attention_mask=mask,
                        position_ids=next_pos[:, None], use_cache=True,
                        output_hidden_states=True, **{cache_kwarg: cache})
        cache, logits = out.past_key_values, out.logits[:, -1].float().cpu()
        next_pos = next_pos + 1
        last = out.hidden_states[-1][:, -1]
        for b in range(n):
            if not done[b] and feed[b] in img and start[b] is not None:
                hidden[b].append(last[b])

    results = []
    for b in range(n):
        ids = [t for t in tokens[b] if t not in stops]
        ret = gen = None
        if start[b] is not None:
            block = torch.stack(hidden[b])[None]  # [1, r, H]
            ret = model.ret.text_embed(block[:, :k])[0]
            gen = model.mapper(block[:, k:])[0]
            before, after = ids[: start[b]], ids[start[b] + r:]
        else:
            before, after = ids, []
        results.append(PegsGeneration(_decode(tok, before), _decode(tok, after), ret, gen,
                                      len(tokens[b]), truncated[b]))
    return results


def _cache_kwarg(llm: torch.nn.Module) -> str:
    """transformers 5.2x renamed forward's `past_key_values` to `cache` (the old name warns
    and goes away in 5.40)."""
    params = inspect.signature(type(llm).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _decode(tokenizer, ids: list[int]) -> str:
    # A budget can end inside a multi-token character (emoji): drop its stub.
    return tokenizer.decode(ids, skip_special_tokens=True).rstrip("\ufffd").strip()
