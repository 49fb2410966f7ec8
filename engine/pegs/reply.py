"""PEGS as the responder's `ReplyModel`: the model writes the text and decides on a sticker.

    messages + the turn's pictures (one <image> each) -> PegsModel.generate
    no [IMG] token        -> text only
    [IMG] emitted, "ret"  -> W_t(first k hidden states) searched against W_i of every library
                             sticker's image features (faiss, via StickerIndex.from_vectors)
                   "gen"  -> the feature mapper's prompt_embeds -> Stable Diffusion when a
                             local checkpoint is configured; else the caption composer draws
                             the retrieved sticker's art with a caption from the reply
                   "rag"  -> img2img from the retrieved sticker under the mapped embeddings
                             (the composer again when there is no diffusion)

The responder's frequency control says per turn whether a sticker is allowed
(`want_sticker`: [IMG1] is banned otherwise) and whether it is overdue (`force_sticker`).
Retrieval ranks the stickers whose emotion fits the responder's emotion plan (the MIME
step before generation); stickers sent earlier in the conversation are excluded.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image

from engine.llm import call_seed, count_text_tokens, first_tokens, trim_to_sentence
from engine.pegs.checkpoint import CheckpointWatcher, load_weights
from engine.pegs.composer import EMOTION_EMOJI, CaptionComposer, caption_for
from engine.pegs.generation import PegsGeneration
from engine.pegs.model import PegsModel
from engine.prompting import MAX_PROMPT_TOKENS, clean_reply, fit_messages
from engine.reply_model import ModelReply, ReplyRequest, library_choice
from engine.stickers import Sticker, StickerIndex, StickerLibrary
from engine.types import StickerChoice

if TYPE_CHECKING:
    from engine.pegs.diffusion import StickerGenerator  # diffusers: imported only with SD
    from engine.pegs.fast import FastPegsDecoder
    from engine.settings import EngineSettings

log = logging.getLogger(__name__)

STICKER_MODES = ("ret", "gen", "rag")
FEATURE_BATCH = 64


@dataclass
class PegsReplyConfig:
    mode: str = "ret"  # ret | gen | rag
    max_new_tokens: int = 40
    temperature: float = 0.6
    top_p: float = 0.9
    seed: int = 0
    gen_steps: int = 25
    guidance_scale: float = 7.5
    rag_strength: float = 0.6  # how far img2img departs from the retrieved sticker

    def __post_init__(self) -> None:
        if self.mode not in STICKER_MODES:
            raise ValueError(f"sticker mode {self.mode!r}: choose one of {STICKER_MODES}")


class PegsReplyModel:
    def __init__(self, model: PegsModel, library: StickerLibrary, generated_dir: Path, *,
                 config: PegsReplyConfig | None = None,
                 generator: StickerGenerator | None = None,
                 composer: CaptionComposer | None = None,
                 watcher: CheckpointWatcher | None = None,
                 fast: FastPegsDecoder | None = None) -> None:
        self.model = model.eval()
        # CTranslate2 decoding of picture-free turns (engine/pegs/fast.py); None: torch only.
        self.fast = fast
        self.library = library
        self.generated_dir = Path(generated_dir)
        self.config = config or PegsReplyConfig()
        self.generator = generator
        self.composer = composer or CaptionComposer(library)
        self.watcher = watcher
        if generator is not None:
            if "mapper" not in getattr(model, "trained_categories", ["mapper"]):
                raise ValueError("this PEGS checkpoint never trained its feature mapper "
                                 "(no Stable Diffusion text encoder in its training): "
                                 "unset STICKERBOT_SD_PATH or train stage 2 with one")
            want = (model.config.gen_seq_len, model.config.gen_dim)
            if (generator.seq_len, generator.embed_dim) != want:
                raise ValueError(
                    f"the Stable Diffusion checkpoint takes prompt_embeds "
                    f"[{generator.seq_len}, {generator.embed_dim}] but the PEGS mapper writes "
                    f"{list(want)}: train the mapper for this SD (PegsConfig.gen_dim)")
        self._lock = threading.Lock()
        self._special = special_pattern(model)
        self._features = self._library_features()  # frozen encoder: computed once
        self.index = self._sticker_index()
        self.version = self._version_name()

    # --- sticker library in the retrieval space --------------------------------------------
    def _library_features(self) -> torch.Tensor:
        ids = self.library.ids()
        rows = []
        for start in range(0, len(ids), FEATURE_BATCH):
            images = []
            for sticker_id in ids[start:start + FEATURE_BATCH]:
                with Image.open(self.library.png_file(sticker_id)) as image:
                    images.append(image.convert("RGBA"))
            rows.append(self.model.sticker_features(images))
        if not rows:
            return torch.zeros(0, self.model.config.sticker_feature_dim)
        return torch.cat(rows)

    def _sticker_index(self) -> StickerIndex:
        """W_i of every sticker (changes with each checkpoint; the features do not)."""
        with torch.no_grad():
            vectors = self.model.encode_stickers(self._features).float().cpu().numpy()
        return StickerIndex.from_vectors(self.library, vectors)

    def _version_name(self) -> str:
        checkpoint = getattr(self.model, "checkpoint_version", None) or "untrained"
        return f"pegs-{self.model.config.profile}@{checkpoint}+{self.config.mode}"

    def reload_if_changed(self) -> None:
        """Switch to a new checkpoint version when CURRENT moved (no restart needed)."""
        if self.watcher is None or not self.watcher.changed() or self.watcher.path is None:
            return
        try:
            load_weights(self.model, self.watcher.path)
        except (OSError, ValueError) as error:
            log.error("checkpoint %s not loaded, still serving %s: %s", self.watcher.path,
                      self.version, error)
            return
        self.model.eval()
        self.index = self._sticker_index()
        self.version = self._version_name()
        if self.fast is not None and self.fast.stale():
            self.fast = self.fast.reload()  # converts the new version once (seconds)
        log.info("switched to PEGS checkpoint %s", self.version)

    # --- ReplyModel -------------------------------------------------------------------------
    def reply(self, requests: list[ReplyRequest]) -> list[ModelReply]:
        if not requests:
            return []
        with self._lock:
            self.reload_if_changed()
            conversations = [self._conversation(r) for r in requests]
            generations = self._generate(requests, conversations)
            replies = []
            for request, generation in zip(requests, generations, strict=True):
                text = reply_text(generation)
                sticker = self._sticker(request, generation, text) if generation.has_sticker \
                    else None
                replies.append(ModelReply(text, sticker, generation.new_tokens))
            return replies

    def _generate(self, requests: list[ReplyRequest],
                  conversations: list[list[dict[str, str]]]) -> list[PegsGeneration]:
        """Picture-free turns on the fast decoder when there is one, the others on torch."""
        cfg = self.config
        fast = [i for i, r in enumerate(requests) if self.fast is not None and not r.images]
        slow = [i for i in range(len(requests)) if i not in fast]
        out: dict[int, PegsGeneration] = {}
        if fast:
            assert self.fast is not None
            made = self.fast.generate(
                [conversations[i] for i in fast],
                allow_sticker=[requests[i].want_sticker for i in fast],
                force_sticker=[requests[i].want_sticker and requests[i].force_sticker
                               for i in fast],
                max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                top_p=cfg.top_p)
            out.update(zip(fast, made, strict=True))
        if slow:
            chosen = [conversations[i] for i in slow]
            made = self.model.generate(
                chosen, [list(requests[i].images) for i in slow],
                allow_sticker=[requests[i].want_sticker for i in slow],
                force_sticker=[requests[i].want_sticker and requests[i].force_sticker
                               for i in slow],
                max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                top_p=cfg.top_p, seed=call_seed(cfg.seed, [json.dumps(c) for c in chosen]))
            out.update(zip(slow, made, strict=True))
        return [out[i] for i in range(len(requests))]

    def _conversation(self, request: ReplyRequest) -> list[dict[str, str]]:
        images = len(request.images)
        tokenizer = self.model.tokenizer
        image_tokens = images * self.model.config.num_query_tokens

        def count(messages: list[dict[str, str]]) -> int:
            prompt = self.model.format_prompt(pegs_messages(messages, 0, "", self._special))
            return count_text_tokens(tokenizer, prompt) + image_tokens

        messages = fit_messages(request.messages, count, MAX_PROMPT_TOKENS,
                                lambda text, n: first_tokens(tokenizer, text, n))
        return pegs_messages(messages, images, self.model.config.image_token, self._special)

    # --- the sticker ---------------------------------------------------------------------------
    def _sticker(self, request: ReplyRequest, generation: PegsGeneration,
                 text: str) -> StickerChoice | None:
        retrieved, score = self._retrieve(request, generation)
        mode = self.config.mode
        if mode == "ret":
            if retrieved is None:
                log.info("PEGS asked for a sticker but none is left to send")
                return None
            return library_choice(self.library, retrieved, score)
        if mode == "rag" and retrieved is None:
            mode = "gen"  # nothing to start from: generate from the embeddings alone
        image, caption = self._draw(mode, request, generation, text, retrieved)
        emotion = retrieved.emotion if retrieved is not None else request.plan.emotion
        description = (f"generated from {retrieved.content_description}" if retrieved
                       else f"generated {emotion.value} sticker")
        path = self._save(image)
        # engine.safety checks it before it is sent: the image (diffusion) or the caption.
        return StickerChoice(id=f"gen-{path.stem}", emotion=emotion, description=description,
                             image_path=str(path), mode=mode, score=score,
                             generator="composer" if caption is not None else "diffusion",
                             caption=caption)

    def _retrieve(self, request: ReplyRequest,
                  generation: PegsGeneration) -> tuple[Sticker | None, float]:
        """The nearest sticker to the reply's [IMG] embedding among those whose emotion fits
        the responder's plan (a comforting one for sadness, never a gleeful one), else
        among all; stickers already sent are excluded."""
        vector = generation.ret_embedding.float().cpu().numpy()
        exclude = request.exclude_sticker_ids
        for emotions in (request.plan.sticker_emotions, (None,)):
            hits = [hit for e in emotions
                    for hit in self.index.search_vector(vector, emotion=e, k=1,
                                                        exclude=exclude)]
            if hits:
                return max(hits, key=lambda hit: hit[1])
        return None, 0.0

    def _draw(self, mode: str, request: ReplyRequest, generation: PegsGeneration, text: str,
              retrieved: Sticker | None) -> tuple[Image.Image, str | None]:
        """The picture, and the caption when the composer drew it (None: diffusion)."""
        cfg, embeds = self.config, generation.gen_embeds[None]
        if self.generator is not None and mode == "gen":
            return self.generator.generate(embeds, steps=cfg.gen_steps,
                                           guidance_scale=cfg.guidance_scale,
                                           seed=cfg.seed)[0], None
        if self.generator is not None:
            with Image.open(self.library.png_file(retrieved.id)) as start:
                return self.generator.refine(start.convert("RGBA"), embeds,
                                             strength=cfg.rag_strength, steps=cfg.gen_steps,
                                             guidance_scale=cfg.guidance_scale,
                                             seed=cfg.seed)[0], None
        emotion = retrieved.emotion if retrieved is not None else request.plan.emotion
        art = retrieved.id if retrieved is not None else EMOTION_EMOJI[emotion]
        caption = caption_for(text, emotion)
        return self.composer.compose(art, caption, emotion=emotion), caption

    def _save(self, image: Image.Image) -> Path:
        """Content-addressed PNG under generated_dir (the bots send it from there)."""
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data = buffer.getvalue()
        path = self.generated_dir / f"{hashlib.sha256(data).hexdigest()[:24]}.png"
        if not path.exists():
            self.generated_dir.mkdir(parents=True, exist_ok=True)
            temp = path.with_suffix(f".{os.getpid()}.tmp")
            temp.write_bytes(data)
            os.replace(temp, path)
        return path


def reply_text(generation: PegsGeneration) -> str:
    """Text before and after the sticker, cut back to a whole sentence where the token
    budget ran out, cleaned like every other reply."""
    before, after = generation.text_before, generation.text_after
    if generation.truncated:
        if after:
            after = trim_to_sentence(after)
        else:
            before = trim_to_sentence(before)
    return clean_reply(" ".join(part for part in (before, after) if part))


def pegs_messages(messages: list[dict[str, str]], images: int, image_token: str,
                  special: re.Pattern[str]) -> list[dict[str, str]]:
    """The messages with every special-token string taken out of their text (a person
    typing "<image>" or "<|im_end|>" must not make a placeholder or end a turn), then one
    <image> per picture of the new turn. Training builds its contexts the same way."""
    out = [{"role": m["role"], "content": special.sub("", m["content"])} for m in messages]
    if images and out:
        out[-1]["content"] += " " + " ".join([image_token] * images)
    return out


def special_pattern(model: PegsModel) -> re.Pattern[str]:
    tokenizer = model.tokenizer
    tokens = {model.config.image_token, *model.config.img_tokens,
              *tokenizer.all_special_tokens,
              *(t.content for t in tokenizer.added_tokens_decoder.values() if t.special)}
    tokens.discard("")
    ordered = sorted(tokens, key=len, reverse=True)  # longest first: no partial matches
    return re.compile("|".join(re.escape(t) for t in ordered))


def checkpoint_root(settings: EngineSettings) -> Path | None:
    """The configured checkpoint (root or version folder), else the committed default when
    the LLM is the default one it was trained on; None when there is none."""
    from engine.pegs.checkpoint import DEFAULT_ROOT, latest_version

    if settings.pegs_checkpoint:
        path = Path(settings.pegs_checkpoint).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"STICKERBOT_PEGS_CHECKPOINT={settings.pegs_checkpoint!r} "
                                    f"does not exist")
        return path
    if settings.llm_path:  # the committed checkpoint's LoRA belongs to SmolLM2
        return None
    return DEFAULT_ROOT if latest_version(DEFAULT_ROOT) else None


def served_checkpoint(settings: EngineSettings) -> Path | None:
    """The PEGS checkpoint the bot answers with, or None for the retrieval reply model.

    "auto" is the retrieval reply model on the corpus-tuned LLM, which won the
    conversation report (training/corpus/report/), unless the operator names a PEGS
    checkpoint; "pegs", "tool" and "text-only" need one (the committed cpu-small counts)."""
    if settings.reply_llm != "local" or settings.reply_model == "retrieval":
        return None
    if settings.reply_model == "auto" and not settings.pegs_checkpoint:
        return None
    checkpoint = checkpoint_root(settings)
    if checkpoint is None:
        raise FileNotFoundError(f"STICKERBOT_REPLY_MODEL={settings.reply_model} needs a "
                                "checkpoint: set STICKERBOT_PEGS_CHECKPOINT (train one: "
                                "stickerbot train)")
    return checkpoint


def load_pegs_reply_model(settings: EngineSettings, library: StickerLibrary,
                          path: Path) -> PegsReplyModel:
    """PEGS on the checkpoint at `path` (a root whose CURRENT version is served and watched,
    or one version folder), with Stable Diffusion when STICKERBOT_SD_PATH is set."""
    from engine.pegs.checkpoint import CONFIG_FILE, DEFAULT_ROOT, load_checkpoint
    from engine.stickers.build import DEFAULT_PACK, TWEMOJI_LICENSE

    if (Path(path).resolve().is_relative_to(DEFAULT_ROOT.resolve())
            and any(s.pack == DEFAULT_PACK and s.license == TWEMOJI_LICENSE for s in library)):
        log.warning("the committed PEGS cpu-small learnt its sticker features on the Noto "
                    "pictures and the pack is drawn in Twemoji: its sticker choice will be "
                    "poor; for PEGS set STICKERBOT_STICKER_ART=noto and run `stickerbot "
                    "stickers build`, or train PEGS on this pack (stickerbot train)")
    overrides = {"llm_cache_dir": str(settings.model_cache_dir)}
    if settings.sd_path:
        overrides["sd_path"] = settings.sd_path
    model = load_checkpoint(path, overrides=overrides)
    generator = None
    if settings.sticker_mode != "ret" and settings.sd_path:
        from engine.pegs.diffusion import StickerGenerator

        generator = StickerGenerator.from_local_path(settings.sd_path)
    elif settings.sticker_mode != "ret":
        log.info("no STICKERBOT_SD_PATH: %s stickers are drawn by the caption composer",
                 settings.sticker_mode)
    watcher = None if (Path(path) / CONFIG_FILE).is_file() else CheckpointWatcher(path)
    config = PegsReplyConfig(mode=settings.sticker_mode, max_new_tokens=settings.max_new_tokens,
                             temperature=settings.temperature, seed=settings.seed,
                             gen_steps=settings.gen_steps, rag_strength=settings.rag_strength)
    return PegsReplyModel(model, library, settings.generated_dir, config=config,
                          generator=generator, watcher=watcher,
                          fast=fast_decoder(settings, model))


def fast_decoder(settings: EngineSettings, model: PegsModel) -> FastPegsDecoder | None:
    """The CTranslate2 decoder when the engine setting picks ct2 (issue 19), for real
    Hugging Face backbones (not the `tiny` test preset)."""
    from engine.fast_llm import CT2_ERRORS, pick_engine

    if (model.config.llm_path == "tiny" or settings.reply_model in ("tool", "text-only")
            or pick_engine(settings.llm_engine) != "ct2"):
        return None  # the baselines decode on torch (engine/pegs/tool_reply.py)
    from engine.pegs.fast import FastPegsDecoder

    try:
        return FastPegsDecoder.load(model, settings.model_cache_dir, seed=settings.seed)
    except CT2_ERRORS as error:
        if settings.llm_engine == "ct2":
            raise
        log.warning("CTranslate2 cannot run this PEGS LLM (%s); decoding on torch", error)
        return None
