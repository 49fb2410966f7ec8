"""Handing a turn to the queue and awaiting its reply, from asyncio adapters.

Embedded: the task runs eagerly on one background thread, so turns are answered one
at a time in arrival order and the event loop stays free. With a broker: the task is
sent to queue "gpu" under task_id "<platform>:<chat>:<message>", so a redelivered
update maps to the same task.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from engine.settings import Settings
from engine.types import Reply, UserTurn
from tasks.app import GPU_QUEUE, configure_celery
from tasks.respond import respond


class Submitter(Protocol):
    """What adapters need of the queue: a turn in, its reply out."""

    async def submit(self, turn: UserTurn) -> Reply: ...


class TurnSubmitter:
    def __init__(self, settings: Settings, reply_timeout_s: float = 120.0) -> None:
        self.settings = settings
        self.reply_timeout_s = reply_timeout_s
        configure_celery(settings)
        # One thread: the model answers one batch at a time, in arrival order.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="respond")

    def _run(self, turn: UserTurn) -> Reply:
        payload = turn.model_dump(mode="json")
        if self.settings.uses_embedded_queue:
            result = respond.apply(args=[payload], task_id=turn.task_id)
        else:
            result = respond.apply_async(args=[payload], task_id=turn.task_id, queue=GPU_QUEUE)
        return Reply.model_validate(result.get(timeout=self.reply_timeout_s, propagate=True))

    async def submit(self, turn: UserTurn) -> Reply:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, turn)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
