"""The `respond` task: one person's turn in, the bot's reply out (as JSON).

A database that is briefly unavailable (a restart, a failover) is waited out: the task
is retried with backoff under the same task id, so the adapter keeps waiting for it.

In a batching worker (tasks/worker.py) several `respond` tasks run at once on the
threads pool, and each hands its turn to the process's `TurnBatcher`, which answers the
turns that are ready together; each task still stores its own result and is retried or
failed on its own. The embedded server answers through `answer_turns` on its own batcher.
"""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import InterfaceError, OperationalError

from engine.types import Reply, UserTurn
from tasks.app import RESPOND_TASK, celery_app
from tasks.batching import TurnBatcher
from tasks.metrics import FAILURES, REPLIES, REPLY_SECONDS
from tasks.runtime import get_runtime

log = logging.getLogger(__name__)

DATABASE_DOWN = (OperationalError, InterfaceError)
MAX_BACKOFF_S = 30


# Set by a batching worker: its respond tasks hand their turns to it.
_batcher: TurnBatcher | None = None


def use_batcher(batcher: TurnBatcher | None) -> None:
    global _batcher
    _batcher = batcher


def answer_turns(turns: list[UserTurn]) -> list[Reply]:
    """Answer turns together in this process, counted in the metrics as the task does."""
    try:
        replies = get_runtime().handle_batch(turns)
    except Exception as error:
        reason = "database" if isinstance(error, DATABASE_DOWN) else "error"
        for turn in turns:
            FAILURES.labels(turn.platform, reason).inc()
        raise
    for turn, reply in zip(turns, replies, strict=True):
        REPLIES.labels(turn.platform).inc()
        REPLY_SECONDS.labels(turn.platform).observe((reply.latency_ms or 0) / 1000)
    return replies


def _answer(turn: UserTurn, soft_limit_s: float | None) -> Reply:
    if _batcher is None:
        return get_runtime().handle(turn)
    try:
        return _batcher.submit(turn).result(timeout=soft_limit_s)
    except FutureTimeout:
        # The batch goes on (a reply made after this is stored, and a resend of the
        # turn returns it); this task stops waiting, as the solo pool's alarm would.
        raise SoftTimeLimitExceeded() from None


@celery_app.task(name=RESPOND_TASK, bind=True)
def respond(self: Task, turn: dict[str, Any]) -> dict[str, Any]:
    platform = str(turn.get("platform", "unknown"))
    runtime = get_runtime()
    try:
        reply = _answer(UserTurn.model_validate(turn),
                        self.soft_time_limit or celery_app.conf.task_soft_time_limit)
    except DATABASE_DOWN as error:
        FAILURES.labels(platform, "database").inc()
        if self.request.is_eager:  # embedded: the adapter's resend loop tries again
            raise
        countdown = min(MAX_BACKOFF_S, 2 ** self.request.retries)
        log.warning("database unavailable for %s (%s); retry %d in %d s", self.request.id,
                    type(error).__name__, self.request.retries + 1, countdown)
        raise self.retry(exc=error, countdown=countdown,
                         max_retries=runtime.settings.task_max_retries) from None
    except SoftTimeLimitExceeded:
        FAILURES.labels(platform, "time limit").inc()
        log.error("reply %s ran past its soft time limit", self.request.id)
        raise
    except Exception:
        FAILURES.labels(platform, "error").inc()
        raise
    REPLIES.labels(platform).inc()
    REPLY_SECONDS.labels(platform).observe((reply.latency_ms or 0) / 1000)
    return reply.model_dump(mode="json")
