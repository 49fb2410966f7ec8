"""An on-disk cache of identical LLM calls, so a rerun (or a resumed run) costs nothing.

The key is a SHA-256 of backend name, model, messages and sampling parameters; the
value is the reply and its token counts. The API key is never part of either. SQLite
in WAL mode, one file, safe across threads and across processes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

from engine.backends.base import ChatBackend, ChatResult, Conversation, Usage

_SCHEMA = """CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY, text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, model TEXT NOT NULL,
    finish_reason TEXT NOT NULL)"""


def call_key(backend: str, model: str, conversation: Conversation, *, max_tokens: int,
             temperature: float, seed: int) -> str:
    payload = {"backend": backend, "model": model, "messages": conversation,
               "max_tokens": max_tokens, "temperature": temperature, "seed": seed}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False)
                          .encode("utf-8")).hexdigest()


class CachedBackend:
    """Wraps any ChatBackend; a hit comes back with `cached=True` and costs nothing."""

    def __init__(self, inner: ChatBackend, path: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.usage = Usage()  # this wrapper's view: hits and what the misses cost
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def _get(self, key: str) -> ChatResult | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens, cost_usd, model, finish_reason "
                "FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return ChatResult(text=row[0], prompt_tokens=row[1], completion_tokens=row[2],
                          cost_usd=row[3], backend=self.name, model=row[4], cached=True,
                          finish_reason=row[5])

    def _put(self, key: str, result: ChatResult) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, result.text, result.prompt_tokens, result.completion_tokens,
                 result.cost_usd, result.model, result.finish_reason))
            self._db.commit()

    def complete(self, conversations: list[Conversation], *, max_tokens: int,
                 temperature: float = 0.7, seed: int = 0) -> list[ChatResult]:
        keys = [call_key(self.name, self.model, c, max_tokens=max_tokens,
                         temperature=temperature, seed=seed) for c in conversations]
        found: list[ChatResult | None] = [self._get(k) for k in keys]
        missing = [i for i, r in enumerate(found) if r is None]
        if missing:
            fresh = self.inner.complete([conversations[i] for i in missing],
                                        max_tokens=max_tokens, temperature=temperature,
                                        seed=seed)
            for i, result in zip(missing, fresh, strict=True):
                self._put(keys[i], result)
                found[i] = replace(result, cached=False)
        results = [r for r in found if r is not None]
        for result in results:
            self.usage.add(result)
        return results
