"""The Telegram adapter's tables on both backends: claims are unique, answers wait until
sent, sticker handles are cached, and /forget removes a person's deliveries too."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from bots.ledger import Ledger
from storage.db import Database
from storage.models import Delivery
from storage.transcript import TranscriptStore


def test_a_message_is_claimed_once(database: Database) -> None:
    ledger = Ledger(database, "telegram")
    assert ledger.claim("telegram:1:5", "1", "42", "Ann")
    assert not ledger.claim("telegram:1:5", "1", "42", "Ann")
    assert ledger.seen("telegram:1:5") and not ledger.seen("telegram:1:6")
    row = ledger.get("telegram:1:5")
    assert row is not None and row.state == "received"


def test_pending_answer_progress_and_due(database: Database) -> None:
    ledger = Ledger(database, "telegram")
    ledger.claim("telegram:1:5", "1", "42")
    ledger.set_payload("telegram:1:5", {"texts": ["a", "b"], "user_id": "42"})
    assert [r.task_id for r in ledger.due(stale_after_s=60)] == ["telegram:1:5"]
    ledger.part_sent("telegram:1:5", 1)
    assert ledger.postpone("telegram:1:5", "502 Bad Gateway", delay_s=60) == 1
    assert ledger.due(stale_after_s=60) == []  # not yet time
    assert [r.parts_sent for r in ledger.due(60, any_pending=True)] == [1]
    ledger.finish("telegram:1:5", "sent")
    assert ledger.due(stale_after_s=60, any_pending=True) == []


def test_unanswered_claim_becomes_due_when_stale(database: Database) -> None:
    ledger = Ledger(database, "telegram")
    ledger.claim("telegram:1:7", "1", "42")
    ledger.set_turn("telegram:1:7", {"text": "hi"})
    assert ledger.due(stale_after_s=60) == []
    time.sleep(0.05)
    [row] = ledger.due(stale_after_s=0.01)
    assert row.turn == {"text": "hi"}


def test_sticker_handles_are_cached_and_replaced(database: Database) -> None:
    ledger = Ledger(database, "telegram")
    assert ledger.sticker_file_id("noto-1f600") is None
    ledger.remember_sticker("noto-1f600", "FILE-A")
    ledger.remember_sticker("noto-1f600", "FILE-B")
    assert Ledger(database, "telegram").sticker_file_id("noto-1f600") == "FILE-B"
    assert Ledger(database, platform="discord").sticker_file_id("noto-1f600") is None
    ledger.forget_sticker("noto-1f600")
    assert ledger.sticker_file_id("noto-1f600") is None


def test_forget_user_removes_their_deliveries(database: Database) -> None:
    ledger = Ledger(database, "telegram")
    ledger.claim("telegram:1:5", "1", "42")
    ledger.claim("telegram:2:5", "2", "43")
    TranscriptStore(database).forget_user("telegram", "42")
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 1
    assert not ledger.seen("telegram:1:5") and ledger.seen("telegram:2:5")


def test_forget_user_returns_the_media_of_an_unanswered_message(database: Database) -> None:
    ledger = Ledger(database, "telegram")
    ledger.claim("telegram:1:6", "1", "42")
    ledger.set_turn("telegram:1:6", {"media": [{"path": "/media/ab/cd/waiting.webp"}]})
    assert TranscriptStore(database).forget_user("telegram", "42") == [
        "/media/ab/cd/waiting.webp"]
