"""The background resend loop, shared by the chat adapters.

Every `resend_interval_s` it takes the ledger's due rows: answers whose sending failed
(sent again from the part where sending stopped) and claimed messages left unanswered
(asked of the responder again; the queue is idempotent, so a stored reply comes back).
At start-up every pending answer goes out at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bots.admission import Busy
from bots.ledger import DeliveryPolicy, Ledger
from engine.types import Reply, UserTurn
from storage.models import utcnow
from tasks.submit import Submitter

log = logging.getLogger(__name__)

# (task_id, stored turn JSON) -> True when an answer payload is now in the ledger.
AnswerAgain = Callable[[str, dict[str, Any] | None], Awaitable[bool]]
Deliver = Callable[[str], Awaitable[str]]


async def submit_or_postpone(submitter: Submitter, ledger: Ledger, task_id: str,
                             turn: UserTurn, retry_in_s: float) -> Reply | None:
    """Ask for the reply; if that fails, the stored turn waits for the resend loop."""
    try:
        return await submitter.submit(turn)  # idempotent: a stored reply comes back
    except Busy as busy:  # the queue is full: expected under load, not an error
        log.warning("queue full for %s; will try again in %d s", task_id, busy.retry_after_s)
        ledger.postpone(task_id, "queue full", max(retry_in_s, busy.retry_after_s))
        return None
    except Exception:
        log.exception("reply failed for %s; will try again", task_id)
        ledger.postpone(task_id, "reply failed", retry_in_s)
        return None


class Resender:
    def __init__(self, ledger: Ledger, policy: DeliveryPolicy, answer_again: AnswerAgain,
                 deliver: Deliver, name: str = "resend") -> None:
        self.ledger = ledger
        self.policy = policy
        self.answer_again = answer_again
        self.deliver = deliver
        self.name = name
        self.inflight: set[str] = set()  # task ids being answered now: not for this loop
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._forever(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _forever(self) -> None:
        first = True  # at start-up, answers left by the last run go out at once
        while True:
            try:
                await self.resend_due(any_pending=first)
            except Exception:  # one bad pass must not end the loop
                log.exception("resend pass failed")
            first = False
            await asyncio.sleep(self.policy.resend_interval_s)

    async def resend_due(self, any_pending: bool = False) -> None:
        oldest = utcnow() - timedelta(seconds=self.policy.give_up_after_s)
        for row in self.ledger.due(self.policy.stale_after_s, any_pending=any_pending):
            if row.task_id in self.inflight:
                continue
            if row.created_at < oldest:
                log.warning("giving up on %s after %d attempts", row.task_id, row.attempts)
                self.ledger.finish(row.task_id, "failed", "too old")
                continue
            self.inflight.add(row.task_id)
            try:
                if row.state == "received":
                    if row.turn is None:
                        # Claimed, but the process stopped before the turn was read.
                        self.ledger.finish(row.task_id, "failed", "no turn recorded")
                        continue
                    if not await self.answer_again(row.task_id, row.turn):
                        continue
                state = await self.deliver(row.task_id)
                log.info("resend of %s: %s", row.task_id, state)
            finally:
                self.inflight.discard(row.task_id)
