"""Recent turns of each conversation cached in Redis, in front of the SQL transcript.

SQL holds every turn and stays the truth; Redis keeps the last `max_turns` of each
conversation so that a reply does not query the messages table. A missing key (never
cached, expired, or Redis lost its data) is rebuilt from SQL; a Redis that errors or does
not answer is logged and skipped, so memory never fails a reply.

Key: `{prefix}:{platform}:{user_id}:{chat_id}`, a list of HistoryTurn JSON, oldest first.
Ids are percent-encoded where they hold anything but letters, digits and `_.-~`, so a `:`
in an id cannot make two conversations share a key and a `*` cannot widen a SCAN pattern.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from sqlalchemy.exc import SQLAlchemyError

from engine.types import HistoryTurn
from storage.db import Database
from storage.memory import SqlMemory, history_of

# history_of lives beside SqlMemory, whose reading it mirrors; re-exported for callers.
__all__ = ["RedisMemory", "history_of"]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "stickerbot:memory"
# Short, and one immediate retry (for a pooled connection that died with a Redis
# restart): redis-py's default of 10 retries would hold a reply for many seconds.
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 2.0


class RedisMemory:
    """A ConversationMemory: recent turns from Redis, rebuilt from SqlMemory when lost."""

    def __init__(self, client: redis.Redis, sql: SqlMemory, max_turns: int = 40,
                 ttl_s: int = 7 * 24 * 3600, prefix: str = DEFAULT_PREFIX) -> None:
        if max_turns < 1 or ttl_s < 1:
            raise ValueError("max_turns and ttl_s must be positive")
        self.client = client
        self.sql = sql
        self.max_turns = max_turns
        self.ttl_s = ttl_s
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, db: Database, max_turns: int = 40,
                 ttl_s: int = 7 * 24 * 3600, prefix: str = DEFAULT_PREFIX) -> RedisMemory:
        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                      socket_timeout=READ_TIMEOUT_S,
                                      retry=Retry(NoBackoff(), 1))
        return cls(client, SqlMemory(db), max_turns, ttl_s, prefix)

    def key(self, platform: str, chat_id: str, user_id: str) -> str:
        return ":".join((self.prefix, _part(platform), _part(user_id), _part(chat_id)))

    # --- ConversationMemory ------------------------------------------------------
    def recent(self, platform: str, chat_id: str, user_id: str, n: int) -> list[HistoryTurn]:
        if n <= 0:
            return []
        if n > self.max_turns:  # more than the cache keeps: only SQL has them
            return self.sql.recent(platform, chat_id, user_id, n)
        try:
            cached = self.client.lrange(self.key(platform, chat_id, user_id), -n, -1)
        except RedisError as exc:
            _warn("read", platform, exc)
            return self.sql.recent(platform, chat_id, user_id, n)
        # Redis keeps no empty lists, so nothing back means no key: rebuild it.
        if cached:
            try:
                return [HistoryTurn.model_validate_json(v) for v in cached]  # type: ignore[union-attr]
            except ValueError as exc:  # an entry this version cannot read: rebuild the key
                _warn("decode", platform, exc)
        return self._rebuild(platform, chat_id, user_id)[-n:]

    def clear(self, platform: str, chat_id: str, user_id: str) -> None:
        self.sql.clear(platform, chat_id, user_id)
        self.clear_cache(platform, chat_id, user_id)

    # --- writes ------------------------------------------------------------------
    def append(self, platform: str, chat_id: str, user_id: str,
               turns: list[HistoryTurn]) -> None:
        """Add turns already committed to SQL; a missing key is rebuilt from SQL instead,
        so a lost cache never turns into a memory holding only the newest turns."""
        if not turns:
            return
        key = self.key(platform, chat_id, user_id)
        try:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.rpushx(key, *[t.model_dump_json() for t in turns])
                pipe.ltrim(key, -self.max_turns, -1)
                pipe.expire(key, self.ttl_s)
                pushed = pipe.execute()[0]
        except RedisError as exc:
            _warn("append", platform, exc)
            return
        if pushed:
            return
        try:
            self._rebuild(platform, chat_id, user_id)
        except SQLAlchemyError as exc:
            # The reply is already stored; the next recent() rebuilds the missing key.
            log.warning("memory cache for %s not rebuilt: database error %s",
                        platform, type(exc).__name__)

    def clear_cache(self, platform: str, chat_id: str, user_id: str) -> None:
        """Drop one conversation's cached turns (SQL is left alone)."""
        try:
            self.client.delete(self.key(platform, chat_id, user_id))
        except RedisError as exc:
            # Louder than a warning: the stale key keeps serving turns SQL has forgotten.
            log.error("memory cache for %s not cleared (%s: %s); it still holds the old "
                      "turns until it expires", platform, type(exc).__name__, exc)

    def forget_user(self, platform: str, user_id: str) -> None:
        """Drop every cached conversation of one person, in all chats."""
        pattern = _glob_escape(f"{self.prefix}:{_part(platform)}:{_part(user_id)}:") + "*"
        try:
            keys = list(self.client.scan_iter(match=pattern, count=500))
            for start in range(0, len(keys), 500):
                self.client.delete(*keys[start:start + 500])
        except RedisError as exc:
            log.error("memory cache for a %s user not forgotten (%s: %s); it expires within "
                      "%d s", platform, type(exc).__name__, exc, self.ttl_s)

    def _rebuild(self, platform: str, chat_id: str, user_id: str) -> list[HistoryTurn]:
        """Reload the key from SQL, which holds every committed turn; returns the turns."""
        turns = self.sql.recent(platform, chat_id, user_id, self.max_turns)
        key = self.key(platform, chat_id, user_id)
        try:
            # One MULTI, so no reader ever sees a half-written list.
            with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if turns:
                    pipe.rpush(key, *[t.model_dump_json() for t in turns])
                    pipe.expire(key, self.ttl_s)
                pipe.execute()
        except RedisError as exc:
            _warn("rebuild", platform, exc)
        return turns


def _part(value: str) -> str:
    return quote(value, safe="")


def _glob_escape(value: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", value)


def _warn(op: str, platform: str, exc: Exception) -> None:
    # Never the turns: a pydantic error quotes its input, so only Redis errors are shown.
    detail = f"{type(exc).__name__}: {exc}" if isinstance(exc, RedisError) else type(exc).__name__
    log.warning("memory cache %s failed for %s (%s); using SQL", op, platform, detail)
