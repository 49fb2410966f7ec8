"""Handing a turn to the queue and awaiting its reply, from asyncio adapters.

Embedded (`TurnSubmitter`): turns go to a `TurnBatcher` whose one model thread answers
the ready turns of different chats together (up to STICKERBOT_BATCH_SIZE, waiting at
most STICKERBOT_BATCH_WINDOW_MS for company); one chat's turns are answered one after
the other in arrival order, and the event loop stays free.

With a broker (`QueueSubmitter`): the task goes to queue "gpu" under task_id
"<platform>:<chat>:<message>", so a redelivered update maps to the same task. Turns of
different chats wait in parallel; one chat's turns go one after the other, so its
replies are made in the order its messages came. The reply is awaited on the result
backend's publish channel, never by polling. If Redis restarts meanwhile (it may have
lost the queued task), the turn is sent again under the same id: the worker returns a
stored reply instead of answering twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, Protocol

import redis.asyncio as aioredis
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.types import Reply, UserTurn
from tasks.app import GPU_QUEUE, celery_app, configure_celery
from tasks.batching import TurnBatcher
from tasks.metrics import ROUNDTRIP_SECONDS, register_queue_depth
from tasks.respond import answer_turns, respond
from tasks.settings import TaskSettings

log = logging.getLogger(__name__)

READY_STATES = {"SUCCESS", "FAILURE", "REVOKED"}
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, BrokerError, ConnectionError)


class Submitter(Protocol):
    """What adapters need of the queue: a turn in, its reply out."""

    async def submit(self, turn: UserTurn) -> Reply: ...

    def close(self) -> None: ...


class ReplyFailed(RuntimeError):
    """The worker could not make the reply (the task failed or was revoked)."""


class TurnSubmitter:
    def __init__(self, settings: TaskSettings, reply_timeout_s: float | None = None) -> None:
        self.settings = settings
        # Waiting in line for the model included, as with a broker.
        self.reply_timeout_s = reply_timeout_s or settings.reply_timeout_s
        configure_celery(settings)
        # One model thread: it answers one batch at a time, each chat in arrival order.
        self._batcher = TurnBatcher(answer_turns, settings.batch_size,
                                    settings.batch_window_ms / 1000)

    async def submit(self, turn: UserTurn) -> Reply:
        future = asyncio.wrap_future(self._batcher.submit(turn))
        return await asyncio.wait_for(future, self.reply_timeout_s)

    def close(self) -> None:
        self._batcher.close()


class QueueSubmitter:
    def __init__(self, settings: TaskSettings, retry_every_s: float = 1.0) -> None:
        self.settings = settings
        self.retry_every_s = retry_every_s
        configure_celery(settings)
        register_queue_depth(settings.celery_broker_url, (GPU_QUEUE,))
        self._backend_url = settings.redis_url or settings.celery_broker_url
        self._redis: aioredis.Redis | None = None
        self._chat_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._chat_users: Counter[tuple[str, str]] = Counter()

    async def submit(self, turn: UserTurn) -> Reply:
        chat = (turn.platform, turn.chat_id)
        lock = self._chat_locks.setdefault(chat, asyncio.Lock())
        self._chat_users[chat] += 1
        try:
            async with lock:
                started = time.perf_counter()
                reply = await self._roundtrip(turn)
                ROUNDTRIP_SECONDS.labels(turn.platform).observe(time.perf_counter() - started)
                return reply
        finally:
            self._chat_users[chat] -= 1
            if self._chat_users[chat] == 0:  # keep memory bounded by the chats in flight
                del self._chat_users[chat], self._chat_locks[chat]

    async def _roundtrip(self, turn: UserTurn) -> Reply:
        deadline = time.monotonic() + self.settings.reply_timeout_s
        sent = False
        while True:
            try:
                meta = await self._send_and_wait(turn, sent, deadline)
                return _reply_of(turn.task_id, meta)
            except REDIS_DOWN as error:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no reply for {turn.task_id}: Redis unavailable") from error
                # Redis may have restarted empty: the task is sent again once it is back.
                log.warning("Redis unavailable while waiting for %s (%s); retrying",
                            turn.task_id, type(error).__name__)
                sent = False
                await self._reconnect()
                await asyncio.sleep(self.retry_every_s)

    async def _send_and_wait(self, turn: UserTurn, sent: bool, deadline: float) -> dict[str, Any]:
        client = self._client()
        key = celery_app.backend.get_key_for_task(turn.task_id).decode()
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(key)  # before sending, so the publish cannot be missed
            meta = _decode(await client.get(key))
            if meta is not None and meta["status"] in READY_STATES:
                return meta
            if not sent:
                payload = turn.model_dump(mode="json")
                await asyncio.to_thread(respond.apply_async, args=[payload],
                                        task_id=turn.task_id, queue=GPU_QUEUE)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no reply for {turn.task_id} within "
                                       f"{self.settings.reply_timeout_s:.0f} s")
                message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                   timeout=min(remaining, 5.0))
                if message is None:  # quiet for a while: look at the stored state anyway
                    meta = _decode(await client.get(key))
                else:
                    meta = _decode(message["data"])
                if meta is not None and meta["status"] in READY_STATES:
                    return meta

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(self._backend_url, socket_connect_timeout=5,
                                                  health_check_interval=10)
        return self._redis

    async def _reconnect(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # the old connection is already broken; drop it
                pass

    def close(self) -> None:
        self._redis = None  # bound to the event loop that has ended


def _decode(value: bytes | None) -> dict[str, Any] | None:
    return None if value is None else celery_app.backend.decode_result(value)


def _reply_of(task_id: str, meta: dict[str, Any]) -> Reply:
    if meta["status"] == "SUCCESS":
        return Reply.model_validate(meta["result"])
    error = meta.get("result") or {}
    kind = error.get("exc_type", meta["status"]) if isinstance(error, dict) else meta["status"]
    raise ReplyFailed(f"reply {task_id} failed in the worker: {kind}")


def make_submitter(settings: TaskSettings) -> Submitter:
    """The in-process submitter on the embedded default, the queue one with a broker."""
    if settings.uses_embedded_queue:
        return TurnSubmitter(settings)
    return QueueSubmitter(settings)
