"""Build the configured backend from the settings (one place, so the simulator and the
judge agree). `openai_backend` reads only the endpoint (replies use it too)."""

from __future__ import annotations

from pathlib import Path

from engine.backends.base import ChatBackend, Price
from engine.backends.cache import CachedBackend
from engine.backends.openai_compat import OpenAIBackend, OpenAIConfig
from engine.settings import BackendSettings, EngineSettings

BACKENDS = ("local", "openai")


def cache_file(settings: BackendSettings) -> Path:
    return (settings.llm_cache_dir or settings.data_dir / "llm-cache") / "calls.sqlite"


def openai_backend(settings: EngineSettings, model: str | None = None) -> OpenAIBackend:
    """The OpenAI-compatible endpoint of the settings, serving `model` (default llm_model)."""
    name = model or settings.llm_model
    if not name:
        raise ValueError("the openai backend needs a model name: set STICKERBOT_LLM_MODEL")
    return OpenAIBackend(OpenAIConfig(
        base_url=settings.llm_base_url, model=name, api_key_env=settings.llm_api_key_env,
        timeout_s=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
        concurrency=settings.llm_concurrency,
        price=Price(settings.llm_price_prompt_per_mtok, settings.llm_price_completion_per_mtok)))


def build_backend(settings: BackendSettings, *, kind: str | None = None, model: str | None = None,
                  cache: bool | None = None) -> ChatBackend:
    """The `kind` backend ("local" or "openai"; default the setting), maybe cached.

    `model` overrides the model: a local path for "local", a model name for "openai".
    """
    kind = kind or settings.llm_backend
    if kind == "local":
        from engine.backends.local import LocalBackend
        from engine.llm import LLMConfig

        backend: ChatBackend = LocalBackend.load(LLMConfig(
            path=model if model is not None else settings.llm_path,
            cache_dir=settings.model_cache_dir, max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature, seed=settings.seed))
    elif kind == "openai":
        backend = openai_backend(settings, model)
    else:
        raise ValueError(f"unknown LLM backend {kind!r}: choose one of {BACKENDS}")
    use_cache = settings.llm_cache if cache is None else cache
    return CachedBackend(backend, cache_file(settings)) if use_cache else backend


def build_escalation(settings: BackendSettings, *, kind: str | None = None,
                     cache: bool | None = None) -> ChatBackend | None:
    """The stronger model for retried replies, or None when none is configured."""
    if not settings.llm_escalation_model:
        return None
    return build_backend(settings, kind=kind, model=settings.llm_escalation_model, cache=cache)
