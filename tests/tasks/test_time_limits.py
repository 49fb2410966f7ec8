"""The solo pool has no time limits of its own: the worker's signal-based ones."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from tasks import worker


def test_soft_limit_interrupts_a_running_task_and_is_cleared_after(monkeypatch) -> None:
    monkeypatch.setattr(worker, "_pool", "solo")
    task = SimpleNamespace(soft_time_limit=0.2, time_limit=30)
    started = time.monotonic()
    worker._start_limits(task_id="t1", task=task)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            while time.monotonic() - started < 5:
                sum(range(1000))  # a task busy in Python, as generation is between tokens
    finally:
        worker._stop_limits()
    assert time.monotonic() - started < 1.0
    assert worker._hard_timer is None
    time.sleep(0.3)  # no alarm left behind for the next task


def test_a_batching_worker_task_stops_waiting_at_its_soft_limit() -> None:
    import threading

    from engine.types import UserTurn
    from tasks import respond
    from tasks.batching import TurnBatcher

    release = threading.Event()

    def stuck(turns):
        release.wait(30)  # a batch that takes longer than the task may wait
        raise RuntimeError("released")

    batcher = TurnBatcher(stuck, size=1, window_s=0)
    respond.use_batcher(batcher)
    try:
        turn = UserTurn(platform="web", chat_id="c", user_id="c", message_id="m1", text="hi")
        with pytest.raises(SoftTimeLimitExceeded):
            respond._answer(turn, soft_limit_s=0.2)
    finally:
        release.set()
        respond.use_batcher(None)
        batcher.close()
