"""Settings of the chat adapters: platform tokens and servers, the web chat's security,
flood control, and what people may send.

A group of the layered settings (see engine/settings.py): the adapters submit to the
queue, so it extends the tasks group; the top-level `settings.Settings` composes it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr

from engine.settings import env_names
from tasks.settings import TaskSettings

# Any case is accepted ("info" too), as logging and uvicorn were given it before.
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                     BeforeValidator(lambda level: str(level).upper())]


class BotSettings(TaskSettings):
    # Platform tokens: secrets, never logged.
    telegram_bot_token: SecretStr | None = Field(default=None,
                                                 validation_alias=env_names("TELEGRAM_BOT_TOKEN"))
    discord_bot_token: SecretStr | None = Field(default=None,
                                                validation_alias=env_names("DISCORD_BOT_TOKEN"))

    # Telegram: a self-hosted Bot API server root (methods at {root}/bot{token}/...,
    # files at {root}/file/bot{token}/...), and webhook mode when a public URL is set.
    telegram_api_base_url: str = Field(default="https://api.telegram.org",
                                       validation_alias=env_names("TELEGRAM_API_BASE_URL"))
    telegram_webhook_url: str = Field(default="",
                                      validation_alias=env_names("TELEGRAM_WEBHOOK_URL"))
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=env_names("TELEGRAM_WEBHOOK_SECRET"))
    telegram_webhook_listen: str = "0.0.0.0"
    telegram_webhook_port: int = 8443

    # Discord: another REST root and gateway (tests point these at a local fake server).
    discord_api_base_url: str = Field(default="",
                                      validation_alias=env_names("DISCORD_API_BASE_URL"))
    discord_gateway_url: str = Field(default="", validation_alias=env_names("DISCORD_GATEWAY_URL"))

    # The longest text people may send.
    max_text_chars: int = 4000

    # Flood control per person: sustained messages a minute, and a burst allowance.
    rate_limit_per_minute: float = 20.0
    rate_limit_burst: int = 5
    # ...and per chat (a group, a Discord channel), whoever writes in it.
    chat_rate_limit_per_minute: float = 60.0
    chat_rate_limit_burst: int = 15

    # Conversations older than this many days are purged (0: kept for ever), checked
    # every purge_interval_s by `stickerbot serve`/`review`/`telegram`/`discord`.
    retention_days: int = Field(default=0, ge=0)
    purge_interval_s: float = Field(default=3600.0, gt=0)

    log_level: LogLevel = "INFO"

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
