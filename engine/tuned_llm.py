"""The default chat LLM tuned on our dialogue corpus: base SmolLM2 plus a LoRA adapter.

The adapter (engine/chat_lora/, ~4 MB, made by `python -m training.chat_tuning`) is
committed; the merged model is not. `merged_model_dir` merges the adapter into the base
model once and caches the result under the model cache (`make models` runs it), named
by the adapter's digest so a new adapter makes a new directory.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

from engine.llm import LLMConfig, _load_directory, local_model_dir

log = logging.getLogger(__name__)

ADAPTER_DIR = Path(__file__).parent / "chat_lora"
ADAPTER_FILE = "adapter_model.safetensors"


def base_model_dir(cache_dir: Path = Path("data") / "models") -> Path:
    """The untuned default LLM (the bundled GGUF, converted once into the cache)."""
    return local_model_dir(LLMConfig(cache_dir=cache_dir))


def adapter_digest(adapter: Path = ADAPTER_DIR) -> str:
    return hashlib.sha256((adapter / ADAPTER_FILE).read_bytes()).hexdigest()[:12]


def merged_model_dir(cache_dir: Path = Path("data") / "models", adapter: Path = ADAPTER_DIR,
                     base: Path | None = None) -> Path:
    """The base model (default: the untuned default LLM) with the adapter merged in, built
    on first use."""
    base = base or base_model_dir(cache_dir)
    target = Path(cache_dir) / f"{base.name}-tuned-{adapter_digest(adapter)}"
    if (target / "config.json").is_file():
        return target
    from peft import PeftModel

    log.info("merging the tuned adapter %s into %s", adapter, base.name)
    model, tokenizer = _load_directory(base)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    merged.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    partial.rename(target)
    return target


def chat_llm_path(settings: Any) -> str:
    """The LLM the bot talks with: the configured path, else the tuned default (merged on
    first use), else (llm_tuned false) "" for the untuned default."""
    if settings.llm_path or not settings.llm_tuned:
        return settings.llm_path
    return str(merged_model_dir(Path(settings.model_cache_dir)))
