"""The production topology under load and faults: real `stickerbot worker` processes on a
real redis-server and PostgreSQL, fed by the adapters' QueueSubmitter.

Each fault is one a deployment meets: a worker killed mid-reply, Redis restarting empty,
PostgreSQL away for a few seconds, and many chats at once. What must hold: every message
is answered exactly once, in order within its chat, and memory survives.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import select

from engine.types import UserTurn
from storage.db import Database
from storage.memory import SqlMemory
from storage.models import Conversation, Message
from storage.redis_memory import RedisMemory
from tasks.submit import QueueSubmitter
from tests.factories import save_tiny_llm
from tests.harness.services import ServiceError, start_postgres, start_redis
from tests.tasks.cluster import Cluster

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def services():
    try:
        redis_service, postgres_service = start_redis(), start_postgres()
    except ServiceError as error:
        pytest.fail(f"test services unavailable: {error}", pytrace=False)
    yield redis_service, postgres_service
    redis_service.stop()
    postgres_service.stop()


@pytest.fixture(scope="module")
def tiny_llm_dir(tmp_path_factory) -> str:
    return save_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))


def make_cluster(services, tmp_path: Path, pack_root, model_cache, **env: str) -> Cluster:
    redis_service, postgres_service = services
    redis.Redis.from_url(redis_service.url).flushall()
    # Limits short enough that a dead worker's task comes back within the test.
    return Cluster.create(redis_service, postgres_service, tmp_path, pack_root, model_cache,
                          STICKERBOT_VISIBILITY_TIMEOUT_S="10",
                          STICKERBOT_TASK_SOFT_TIME_LIMIT_S="7",
                          STICKERBOT_TASK_TIME_LIMIT_S="9", **env)


@pytest.fixture
def tiny_cluster(services, tmp_path, pack_root, model_cache, tiny_llm_dir):
    cluster = make_cluster(services, tmp_path, pack_root, model_cache,
                           STICKERBOT_LLM_PATH=tiny_llm_dir, STICKERBOT_MAX_NEW_TOKENS="8")
    yield cluster
    cluster.stop()


def turn(chat: str, n: int, text: str = "I had such a long day at work") -> UserTurn:
    return UserTurn(platform="web", chat_id=chat, user_id=chat, message_id=f"m{n}",
                    text=f"{text} ({n})")


def stored(cluster: Cluster, chat: str) -> list[tuple[str, str]]:
    """(role, platform_message_id) of a chat's stored messages, in the order written."""
    db = Database(cluster.database_url)
    try:
        with db.session() as s:
            rows = s.execute(select(Message.role, Message.platform_message_id)
                             .join(Conversation, Conversation.id == Message.conversation_id)
                             .where(Conversation.chat_id == chat)
                             .order_by(Message.id)).all()
        return [(role, mid) for role, mid in rows]
    finally:
        db.dispose()


def answered_once_in_order(rows: list[tuple[str, str]], count: int) -> bool:
    expected = [(role, f"m{n}") for n in range(count) for role in ("user", "bot")]
    return rows == expected


def task_state(cluster: Cluster, task_id: str) -> str | None:
    client = redis.Redis.from_url(cluster.env["REDIS_URL"])
    value = client.get(f"celery-task-meta-{task_id}")
    return None if value is None else json.loads(value)["status"]


def replies_made(metrics_url: str) -> float:
    text = httpx.get(metrics_url, timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('stickerbot_replies_total{platform="web"}'))


async def submit_all(submitter: QueueSubmitter, turns: list[UserTurn]):
    return await asyncio.gather(*(submitter.submit(t) for t in turns))


def test_worker_killed_mid_reply_is_answered_once_by_the_next(
        services, tmp_path, pack_root, model_cache) -> None:
    # The real SmolLM2, on torch, so a reply takes long enough (seconds) to be interrupted:
    # the default CTranslate2 copy of the tuned model answers in about half a second.
    cluster = make_cluster(services, tmp_path, pack_root, model_cache,
                           STICKERBOT_LLM_ENGINE="torch", STICKERBOT_LLM_TUNED="false")
    try:
        first = cluster.start_worker("first")
        message = turn("killed", 0, "My cat is sick and I am scared")
        outcome: dict[str, object] = {}

        def client() -> None:
            submitter = QueueSubmitter(cluster.settings())
            try:
                outcome["reply"] = asyncio.run(submitter.submit(message))
            except Exception as error:  # reported by the assertion below
                outcome["error"] = error

        waiting = threading.Thread(target=client)
        waiting.start()
        deadline = time.monotonic() + 60
        while task_state(cluster, message.task_id) != "STARTED":
            assert time.monotonic() < deadline, "the first worker never started the reply"
            time.sleep(0.05)
        time.sleep(0.5)  # inside generation now
        first.kill()
        killed_at = time.monotonic()
        assert stored(cluster, "killed") == []  # it died before storing anything

        cluster.start_worker("second")
        waiting.join(timeout=120)
        assert not waiting.is_alive(), "no reply after the second worker started"
        assert "error" not in outcome, outcome.get("error")
        assert outcome["reply"].text.strip()
        assert answered_once_in_order(stored(cluster, "killed"), 1)
        print(f"\n[faults] killed worker's message answered {time.monotonic() - killed_at:.1f} s "
              f"after the kill (visibility timeout 10 s)")
    finally:
        cluster.stop()


def test_redis_restart_mid_conversation_loses_nothing(tiny_cluster: Cluster, services) -> None:
    redis_service, _ = services
    tiny_cluster.start_worker("w")
    submitter = QueueSubmitter(tiny_cluster.settings(), retry_every_s=0.5)
    chat = "redis-restart"

    async def conversation() -> None:
        for n in range(3):
            await submitter.submit(turn(chat, n))
        # Redis goes away (and comes back empty) while message 3 is being sent.
        redis_service.pause()
        in_flight = asyncio.ensure_future(submitter.submit(turn(chat, 3)))
        await asyncio.sleep(2)
        redis_service.resume()
        await in_flight
        for n in range(4, 6):
            await submitter.submit(turn(chat, n))

    asyncio.run(conversation())
    assert answered_once_in_order(stored(tiny_cluster, chat), 6)

    # Memory: the cache Redis lost was rebuilt from PostgreSQL, every turn in it.
    db = Database(tiny_cluster.database_url)
    try:
        memory = RedisMemory.from_url(tiny_cluster.env["REDIS_URL"], db, 40, 3600)
        from_redis = memory.recent("web", chat, chat, 12)
        from_sql = SqlMemory(db).recent("web", chat, chat, 12)
    finally:
        db.dispose()
    assert from_redis == from_sql
    assert [t.role for t in from_redis] == ["user", "bot"] * 6
    assert "(0)" in from_redis[0].text and "(5)" in from_redis[-2].text


def test_postgres_away_for_seconds_replies_wait_and_retry(tiny_cluster: Cluster,
                                                          services) -> None:
    _, postgres_service = services
    worker = tiny_cluster.start_worker("w")
    submitter = QueueSubmitter(tiny_cluster.settings())
    chats = [f"pg-{i}" for i in range(3)]

    async def during_outage():
        postgres_service.pause()
        replies = asyncio.ensure_future(submit_all(submitter, [turn(c, 0) for c in chats]))
        await asyncio.sleep(4)
        postgres_service.resume()
        return await replies

    replies = asyncio.run(during_outage())
    assert all(r.text.strip() for r in replies)
    for chat in chats:
        assert answered_once_in_order(stored(tiny_cluster, chat), 1)
    assert "database unavailable" in worker.log()  # waited and retried, not failed


def test_fifty_chats_of_ten_messages_each_answered_once_in_order(tiny_cluster: Cluster) -> None:
    workers = [tiny_cluster.start_worker(name) for name in ("a", "b")]
    submitter = QueueSubmitter(tiny_cluster.settings())
    chats = [f"load-{i:02d}" for i in range(50)]
    # Each chat sends its ten messages at once, as a fast typist does; the submitter must
    # still have them answered one after the other.
    turns = [turn(chat, n) for chat in chats for n in range(10)]
    started = time.perf_counter()
    replies = asyncio.run(submit_all(submitter, turns))
    seconds = time.perf_counter() - started
    assert len(replies) == 500 and all(r.text.strip() for r in replies)
    by_chat = defaultdict(list)
    for chat in chats:
        by_chat[chat] = stored(tiny_cluster, chat)
    out_of_order = [c for c, rows in by_chat.items() if not answered_once_in_order(rows, 10)]
    assert out_of_order == []
    # Each worker reports the replies it made; together, all of them.
    made = sum(replies_made(w.health_url.replace("/healthz", "/metrics")) for w in workers)
    assert made == 500
    print(f"\n[load] 50 chats x 10 messages on 2 workers (tiny LLM): {seconds:.1f} s, "
          f"{500 / seconds:.1f} replies/s")


def test_a_batching_worker_answers_chats_writing_at_once_in_one_batch(
        tiny_cluster: Cluster) -> None:
    # The window is long, so only a full batch (four turns) sets the batch off.
    worker = tiny_cluster.start_worker("batching", STICKERBOT_BATCH_SIZE="4",
                                       STICKERBOT_BATCH_WINDOW_MS="20000")
    submitter = QueueSubmitter(tiny_cluster.settings())
    chats = [f"together-{i}" for i in range(4)]
    replies = asyncio.run(submit_all(submitter, [turn(chat, 0) for chat in chats]))
    assert all(r.text.strip() for r in replies)
    for chat in chats:
        assert answered_once_in_order(stored(tiny_cluster, chat), 1)
    metrics = httpx.get(worker.health_url.replace("/healthz", "/metrics"), timeout=5).text
    assert "stickerbot_batch_turns_count 1.0" in metrics
    assert "stickerbot_batch_turns_sum 4.0" in metrics
