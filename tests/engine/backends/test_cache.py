"""The on-disk cache: identical calls answered from disk, keys without secrets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.backends import CachedBackend, call_key
from tests.engine.backends.scripted import ScriptedBackend

HELLO = [{"role": "user", "content": "hello"}]


def test_identical_calls_hit_the_cache_across_instances(tmp_path: Path) -> None:
    inner = ScriptedBackend(lambda conv: "reply to " + conv[-1]["content"])
    cached = CachedBackend(inner, tmp_path / "calls.sqlite")
    first = cached.complete([HELLO, [{"role": "user", "content": "bye"}]], max_tokens=8)
    again = cached.complete([HELLO], max_tokens=8)
    assert [r.cached for r in first] == [False, False] and again[0].cached
    assert again[0].text == first[0].text == "reply to hello"
    assert again[0].prompt_tokens == first[0].prompt_tokens
    assert len(inner.calls) == 1
    # Other parameters are other calls.
    cached.complete([HELLO], max_tokens=9)
    cached.complete([HELLO], max_tokens=8, seed=1)
    assert len(inner.calls) == 3
    cached.close()
    reopened = CachedBackend(inner, tmp_path / "calls.sqlite")
    assert reopened.complete([HELLO], max_tokens=8)[0].cached
    assert len(reopened) == 4
    assert reopened.usage.cache_hits == 1


def test_key_depends_on_backend_model_messages_and_params_only() -> None:
    key = call_key("openai", "m", HELLO, max_tokens=8, temperature=0.5, seed=0)
    assert key == call_key("openai", "m", [dict(HELLO[0])], max_tokens=8, temperature=0.5,
                           seed=0)
    assert key != call_key("openai", "m2", HELLO, max_tokens=8, temperature=0.5, seed=0)
    assert key != call_key("local", "m", HELLO, max_tokens=8, temperature=0.5, seed=0)
    assert key != call_key("openai", "m", HELLO, max_tokens=8, temperature=0.6, seed=0)


def test_the_cache_file_holds_no_api_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STICKERBOT_LLM_API_KEY", "sk-secret-123")
    cached = CachedBackend(ScriptedBackend(["fine"]), tmp_path / "calls.sqlite")
    cached.complete([HELLO], max_tokens=8)
    cached.close()
    dump = "\n".join(sqlite3.connect(tmp_path / "calls.sqlite").iterdump())
    assert "fine" in dump and "sk-secret-123" not in dump
