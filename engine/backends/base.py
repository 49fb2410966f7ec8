"""One interface for every chat LLM the project calls: the local model or a remote endpoint.

The simulator (and later the LLM judge) only ever sees `ChatBackend.complete`, which
takes a batch of conversations and returns one `ChatResult` per conversation with its
token counts and cost. A batch is the unit of work because the local model is ~5x faster
batched, and a remote endpoint gets the batch as concurrent requests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# A chat message as every backend takes it: {"role": "system"|"user"|"assistant", "content"}.
Message = dict[str, str]
Conversation = list[Message]


class BackendError(RuntimeError):
    """A call failed for good (after its retries): callers fall back, never crash a run."""


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens; zero for local models."""

    prompt_per_mtok: float = 0.0
    completion_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_mtok
                + completion_tokens * self.completion_per_mtok) / 1_000_000


@dataclass(frozen=True)
class ChatResult:
    """One reply with what it cost. `cached` replies cost nothing this time."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    backend: str
    model: str
    seconds: float = 0.0
    cached: bool = False
    finish_reason: str = "stop"


@dataclass
class Usage:
    """Running totals of a backend's calls (thread-safe: remote calls run in threads)."""

    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, result: ChatResult) -> None:
        with self._lock:
            self.calls += 1
            if result.cached:
                self.cache_hits += 1
                return
            self.prompt_tokens += result.prompt_tokens
            self.completion_tokens += result.completion_tokens
            self.cost_usd += result.cost_usd
            self.seconds += result.seconds

    def count(self, *, retries: int = 0, failures: int = 0) -> None:
        with self._lock:
            self.retries += retries
            self.failures += failures

    def as_dict(self) -> dict[str, float | int]:
        with self._lock:
            return {"calls": self.calls, "cache_hits": self.cache_hits,
                    "retries": self.retries, "failures": self.failures,
                    "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens,
                    "cost_usd": round(self.cost_usd, 6), "seconds": round(self.seconds, 3)}


@runtime_checkable
class ChatBackend(Protocol):
    """What the simulator and the judge need from an LLM."""

    name: str  # "local", "openai", ...: part of the cache key
    model: str
    usage: Usage

    def complete(self, conversations: list[Conversation], *, max_tokens: int,
                 temperature: float = 0.7, seed: int = 0) -> list[ChatResult]:
        """One reply per conversation, in order. Raises BackendError when a call fails."""
        ...
