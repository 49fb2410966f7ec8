"""Opening the transcript store as configured: the database, and with REDIS_URL the
worker's memory cache too, so that /reset and /forget also clear what it cached.

The chat adapters (bots/) and the dashboard (review/) open it the same way.
"""

from __future__ import annotations

from storage.db import Database
from storage.settings import StorageSettings
from storage.transcript import TranscriptStore


def transcript_store(settings: StorageSettings, db: Database) -> TranscriptStore:
    """With Redis, /reset and /forget also clear the worker's cached memory."""
    if not settings.redis_url:
        return TranscriptStore(db)
    from storage.redis_memory import RedisMemory

    cache = RedisMemory.from_url(settings.redis_url, db, settings.memory_cache_turns,
                                 settings.memory_ttl_s)
    return TranscriptStore(db, memory_cache=cache)
