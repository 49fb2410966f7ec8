"""Storage settings: the database, and the Redis cache of recent turns.

A group of the layered settings (see engine/settings.py); the top-level `settings.Settings`
composes it with the others.
"""

from __future__ import annotations

from pydantic import Field

from engine.settings import DataSettings, env_names


class StorageSettings(DataSettings):
    # Empty means the embedded default: SQLite in data_dir, and no Redis.
    database_url: str = Field(default="", validation_alias=env_names("DATABASE_URL"))
    redis_url: str = Field(default="", validation_alias=env_names("REDIS_URL"))

    # Recent turns kept in Redis per conversation (also bounded by memory_turns when read),
    # and how long an idle conversation's cache lives. The database keeps every turn.
    memory_cache_turns: int = 40
    memory_ttl_s: int = 7 * 24 * 3600

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'stickerbot.db').resolve()}"
