"""The `respond` task: one person's turn in, the bot's reply out (as JSON).

A database that is briefly unavailable (a restart, a failover) is waited out: the task
is retried with backoff under the same task id, so the adapter keeps waiting for it.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import InterfaceError, OperationalError

from engine.types import UserTurn
from tasks.app import RESPOND_TASK, celery_app
from tasks.metrics import FAILURES, REPLIES, REPLY_SECONDS
from tasks.runtime import get_runtime

log = logging.getLogger(__name__)

DATABASE_DOWN = (OperationalError, InterfaceError)
MAX_BACKOFF_S = 30


@celery_app.task(name=RESPOND_TASK, bind=True)
def respond(self: Task, turn: dict[str, Any]) -> dict[str, Any]:
    platform = str(turn.get("platform", "unknown"))
    runtime = get_runtime()
    try:
        reply = runtime.handle(UserTurn.model_validate(turn))
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
