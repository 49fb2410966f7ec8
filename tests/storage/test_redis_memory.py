"""RedisMemory against a real Redis and both SQL backends: same answers as SqlMemory,
bounded and expiring, rebuilt after Redis loses its data, harmless when Redis is down."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from engine.types import HistoryTurn, Media, MediaKind, Reply, UserTurn
from storage.db import Database
from storage.memory import ConversationMemory, SqlMemory, history_of
from storage.redis_memory import RedisMemory
from storage.transcript import TranscriptStore
from tests.harness.services import free_port
from tests.storage.helpers import perception, reply, sticker_media, turn

KEY = ("telegram", "chat-1", "u-1")
# A Redis DB of its own for the tests that flush it, so other tests keep their keys.
FLUSH_DB = 7


class CountingSql(SqlMemory):
    """SqlMemory that counts its reads, to see which answers came from Redis."""

    calls = 0

    def recent(self, platform: str, chat_id: str, user_id: str, n: int) -> list[HistoryTurn]:
        self.calls += 1
        return super().recent(platform, chat_id, user_id, n)


def _url(redis_url: str, db: int) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def _memory(client: redis.Redis, db: Database, **kwargs: int) -> RedisMemory:
    # A fresh prefix per test: tests share the server and must not see each other's keys.
    return RedisMemory(client, CountingSql(db), prefix=f"test:{uuid.uuid4().hex}", **kwargs)


def _exchange(store: TranscriptStore, memory: RedisMemory, t: UserTurn, r: Reply) -> None:
    """What the worker does: commit the exchange, then append it to the cache."""
    assert store.record_exchange(t, perception(), r)
    memory.append(t.platform, t.chat_id, t.user_id, history_of(t, r))


def test_is_a_conversation_memory(client: redis.Redis, database: Database) -> None:
    assert isinstance(_memory(client, database), ConversationMemory)


def test_history_of_matches_what_sql_reads_back(database: Database) -> None:
    store, sql = TranscriptStore(database), SqlMemory(database)
    image = Media(kind=MediaKind.image, path="/m/photo.jpg", format="jpeg", emoji="🙂",
                  caption="my new dog")
    exchanges = [
        (turn("m1", "I failed my exam"), reply("So sorry.", sticker_id=None)),
        (turn("m2", "", media=[sticker_media("/m/a.webp", library_id="lib-7")]),
         reply("Hugs!", sticker_id="noto-1f917")),
        (turn("m3", "look", media=[image, sticker_media("/m/b.webp", emoji=None,
                                                        set_name=None)]),
         reply("Cute!", sticker_id="noto-1f60d")),
        (turn("m4", "thanks", media=[Media(kind=MediaKind.image, path="/m/x.png",
                                           format="png")]), reply("Any time.", sticker_id=None)),
    ]
    for t, r in exchanges:
        store.record_exchange(t, perception(), r)
        assert history_of(t, r) == sql.recent(*KEY, 2)
    assert history_of(*exchanges[1])[0].sticker_id == "lib-7"
    assert history_of(*exchanges[2])[0].sticker_description == "🙂 my new dog; a sticker"


def test_recent_equals_sql_and_comes_from_redis(client: redis.Redis,
                                                database: Database) -> None:
    store, memory = TranscriptStore(database), _memory(client, database)
    sql = SqlMemory(database)
    for i in range(3):
        _exchange(store, memory, turn(f"m{i}", f"user {i}"),
                  reply(f"bot {i}", sticker_id="s-1" if i % 2 else None))
    memory.sql.calls = 0  # type: ignore[attr-defined]
    for n in (1, 4, 6, 40):
        assert memory.recent(*KEY, n) == sql.recent(*KEY, n)
    assert memory.sql.calls == 0  # type: ignore[attr-defined]
    # SQL changed behind its back: the cached turns still answer.
    sql.clear(*KEY)
    assert [h.text for h in memory.recent(*KEY, 2)] == ["user 2", "bot 2"]
    assert memory.recent(*KEY, 0) == []


def test_first_read_of_an_uncached_conversation_fills_the_cache(client: redis.Redis,
                                                                database: Database) -> None:
    store, memory = TranscriptStore(database), _memory(client, database)
    store.record_exchange(turn("m1", "before redis"), perception(), reply("hi"))
    assert [h.text for h in memory.recent(*KEY, 6)] == ["before redis", "hi"]
    assert [h.text for h in memory.recent(*KEY, 6)] == ["before redis", "hi"]
    assert memory.sql.calls == 1  # type: ignore[attr-defined]
    assert memory.recent("telegram", "chat-1", "nobody", 6) == []


def test_bounded_and_expiring(client: redis.Redis, database: Database) -> None:
    store, memory = TranscriptStore(database), _memory(client, database, max_turns=4,
                                                       ttl_s=300)
    sql = SqlMemory(database)
    for i in range(5):
        _exchange(store, memory, turn(f"m{i}", f"user {i}"), reply(f"bot {i}"))
    key = memory.key(*KEY)
    assert client.llen(key) == 4
    assert 0 < client.ttl(key) <= 300
    assert memory.recent(*KEY, 4) == sql.recent(*KEY, 4)
    # Asking for more than the cache keeps goes to SQL, which has every turn.
    assert [h.text for h in memory.recent(*KEY, 10)][:2] == ["user 0", "bot 0"]


def test_redis_loses_its_data(redis_url: str, database: Database) -> None:
    c = redis.Redis.from_url(_url(redis_url, FLUSH_DB))
    try:
        store, memory = TranscriptStore(database), _memory(c, database, max_turns=6)
        sql = SqlMemory(database)
        for i in range(2):
            _exchange(store, memory, turn(f"m{i}", f"user {i}"), reply(f"bot {i}"))
        c.flushdb()
        assert memory.recent(*KEY, 6) == sql.recent(*KEY, 6)
        assert c.llen(memory.key(*KEY)) == 4
        # Lost again, then a new exchange: the cache holds the whole memory, not 2 turns.
        c.flushdb()
        _exchange(store, memory, turn("m2", "user 2"), reply("bot 2"))
        assert c.llen(memory.key(*KEY)) == 6
        memory.sql.calls = 0  # type: ignore[attr-defined]
        assert memory.recent(*KEY, 6) == sql.recent(*KEY, 6)
        assert memory.sql.calls == 0  # type: ignore[attr-defined]
    finally:
        c.flushdb()
        c.close()


def test_redis_unreachable(database: Database, caplog: pytest.LogCaptureFixture) -> None:
    memory = RedisMemory.from_url(f"redis://127.0.0.1:{free_port()}/0", database)
    store, sql = TranscriptStore(database, memory_cache=memory), SqlMemory(database)
    t, r = turn("m1", "my secret worry"), reply("a private answer")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="storage.redis_memory"):
        store.record_exchange(t, perception(), r)
        memory.append(*KEY, history_of(t, r))
        assert memory.recent(*KEY, 6) == sql.recent(*KEY, 6)
        assert [h.text for h in memory.recent(*KEY, 6)] == ["my secret worry", "a private answer"]
        memory.clear(*KEY)
        assert memory.recent(*KEY, 6) == []
        store.reset_conversation(*KEY)
        store.forget_user("telegram", "u-1")
    assert time.monotonic() - started < 10
    levels = {rec.levelno for rec in caplog.records}
    assert logging.WARNING in levels and logging.ERROR in levels  # ERROR: a clear failed
    assert "ConnectionError" in caplog.text
    assert "secret" not in caplog.text and "private" not in caplog.text


def test_reset_and_clear_empty_both(client: redis.Redis, database: Database) -> None:
    memory = _memory(client, database)
    store = TranscriptStore(database, memory_cache=memory)
    _exchange(store, memory, turn("m1", "before"), reply("old"))
    assert len(memory.recent(*KEY, 6)) == 2
    store.reset_conversation(*KEY)
    assert not client.exists(memory.key(*KEY))
    assert memory.recent(*KEY, 6) == [] == SqlMemory(database).recent(*KEY, 6)
    _exchange(store, memory, turn("m2", "after"), reply("new"))
    assert [h.text for h in memory.recent(*KEY, 6)] == ["after", "new"]
    memory.clear(*KEY)
    assert not client.exists(memory.key(*KEY))
    assert memory.recent(*KEY, 6) == [] == SqlMemory(database).recent(*KEY, 6)


def test_forget_user_removes_only_their_keys(client: redis.Redis, database: Database) -> None:
    memory = _memory(client, database)
    store = TranscriptStore(database, memory_cache=memory)
    people = [("telegram", "chat-1", "u-1"), ("telegram", "group", "u-1"),
              ("telegram", "group", "u-2"), ("telegram", "group", "u-1:x"),
              ("telegram", "group", "u*"), ("discord", "chat-1", "u-1")]
    for i, (platform, chat_id, user_id) in enumerate(people):
        t = turn(f"m{i}", "hi", platform=platform, chat_id=chat_id, user_id=user_id)
        _exchange(store, memory, t, reply())
    assert all(client.exists(memory.key(*p)) for p in people)
    store.forget_user("telegram", "u*")  # a glob in an id matches only that id
    assert [bool(client.exists(memory.key(*p))) for p in people] == [
        True, True, True, True, False, True]
    store.forget_user("telegram", "u-1")
    assert [bool(client.exists(memory.key(*p))) for p in people] == [
        False, False, True, True, False, True]
    assert memory.recent("telegram", "group", "u-1", 6) == []
    assert len(memory.recent("telegram", "group", "u-2", 6)) == 2
    memory.forget_user("telegram", "nobody")  # nothing cached: no error


def test_redelivered_exchange_is_not_appended_twice(client: redis.Redis,
                                                    database: Database) -> None:
    store, memory = TranscriptStore(database), _memory(client, database)
    t, r = turn("m1"), reply()
    _exchange(store, memory, t, r)
    assert store.record_exchange(t, perception(), r) is False  # the worker skips append
    assert memory.recent(*KEY, 6) == SqlMemory(database).recent(*KEY, 6)
