"""TranscriptStore's reachability flag (a Telegram 403 clears it) on both backends."""

from __future__ import annotations

from storage.db import Database
from storage.transcript import TranscriptStore


def test_user_active_flag(database: Database) -> None:
    store = TranscriptStore(database)
    assert store.user_active("telegram", "42")  # unknown people are reachable
    store.set_user_active("telegram", "42", False)
    assert not store.user_active("telegram", "42")
    assert store.user_active("discord", "42")
    store.set_user_active("telegram", "42", True)
    assert store.user_active("telegram", "42")
