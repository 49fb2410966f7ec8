"""Per-user and per-chat rate limits: a token bucket per key, refilled continuously."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allow `burst` messages at once and `per_minute` sustained, per key.

    Keys are kept in LRU order and capped so a flood of new ids cannot grow memory.
    """

    def __init__(self, per_minute: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may send again (0 when it may now)."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.tokens >= 1.0 or self.rate <= 0:
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


FLOOD_NOTICE = ("You're sending messages faster than I can answer them. I'll skip a few; "
                "please wait {wait} s and then write again.")


CHAT_FLOOD_NOTICE = ("This chat is sending messages faster than I can answer them. I'll "
                     "skip a few; please wait {wait} s.")


class FloodGuard:
    """A RateLimiter that also decides when to tell a person to slow down: once per flood.

    `check(key)` gives None when the message may go on, otherwise the notice to send
    (a string, the first time in this flood) or "" (already told: stay quiet). With a
    chat limit, `check(key, chat_key)` also holds a whole chat (a group, a channel) to
    its own budget, whoever writes in it.
    """

    def __init__(self, per_minute: float, burst: int, *, chat_per_minute: float | None = None,
                 chat_burst: int | None = None) -> None:
        self.limiter = RateLimiter(per_minute, burst)
        self.chat_limiter = (RateLimiter(chat_per_minute, chat_burst or burst)
                             if chat_per_minute is not None else None)
        # Who was told in the current flood; bounded like the limiter's own table, so
        # people who flood once and never return cannot grow it for ever.
        self.flooded: OrderedDict[str, None] = OrderedDict()

    def check(self, key: str, chat_key: str | None = None) -> str | None:
        if not self.limiter.allow(key):
            return self._notice(key, self.limiter, FLOOD_NOTICE)
        self.flooded.pop(key, None)
        if self.chat_limiter is None or chat_key is None:
            return None
        flood_key = f"chat:{chat_key}"
        if not self.chat_limiter.allow(chat_key):
            return self._notice(flood_key, self.chat_limiter, CHAT_FLOOD_NOTICE, chat_key)
        self.flooded.pop(flood_key, None)
        return None

    def _notice(self, flood_key: str, limiter: RateLimiter, text: str,
                limiter_key: str | None = None) -> str:
        if flood_key in self.flooded:
            return ""
        self.flooded[flood_key] = None
        while len(self.flooded) > self.limiter.max_keys:
            self.flooded.popitem(last=False)
        wait = max(1, round(limiter.retry_after(limiter_key or flood_key)))
        return text.format(wait=wait)
