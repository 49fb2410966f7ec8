"""Bounds on turns waiting for a reply, so a flood is refused at once instead of making
everybody wait behind it.

`WaitingTurns` counts the turns in flight, in all and per key (the web chat keys by
client address), and refuses past either bound with `Busy`: 429 when one key has too
many waiting, 503 when the queue as a whole is full, both with a Retry-After.
`BoundedSubmitter` puts such a bound in front of any submitter: `stickerbot serve` wraps
the embedded queue (one batch answered at a time, for every platform) in it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from engine.types import Reply, UserTurn
from tasks.submit import Submitter

RETRY_AFTER_S = 10


class Busy(RuntimeError):
    def __init__(self, status: int, code: str, message: str,
                 retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after_s = retry_after_s


class WaitingTurns:
    def __init__(self, max_total: int, max_per_key: int) -> None:
        self.max_total, self.max_per_key = max_total, max_per_key
        self.per_key: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.per_key.values())

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """One turn of `key` waits while the block runs; Busy when there is no room.
        (No lock: callers run on one event loop and nothing here awaits.)"""
        if self.total >= self.max_total:
            raise Busy(503, "busy", "I'm answering a lot of people right now. Please try "
                       f"again in {RETRY_AFTER_S} s.")
        if self.per_key[key] >= self.max_per_key:
            raise Busy(429, "too_many_waiting", "Your earlier messages are still being "
                       f"answered. Please wait for them, or try again in {RETRY_AFTER_S} s.")
        self.per_key[key] += 1
        try:
            yield
        finally:
            self.per_key[key] -= 1
            if self.per_key[key] <= 0:
                del self.per_key[key]


class BoundedSubmitter:
    """A submitter that refuses a turn (Busy) when `max_waiting` are already waiting."""

    def __init__(self, inner: Submitter, max_waiting: int) -> None:
        self.inner = inner
        self.waiting = WaitingTurns(max_waiting, max_waiting)

    async def submit(self, turn: UserTurn) -> Reply:
        with self.waiting.hold("all"):
            return await self.inner.submit(turn)

    def close(self) -> None:
        self.inner.close()
