"""SqlMemory: order, window, /reset, per-user-per-chat separation, sticker descriptions."""

from __future__ import annotations

from engine.types import HistoryTurn
from storage.db import Database
from storage.memory import ConversationMemory, SqlMemory, describe_media
from storage.transcript import TranscriptStore
from tests.storage.helpers import perception, reply, sticker_media, turn


def test_is_a_conversation_memory(database: Database) -> None:
    assert isinstance(SqlMemory(database), ConversationMemory)


def test_recent_oldest_first_and_window(database: Database) -> None:
    store, memory = TranscriptStore(database), SqlMemory(database)
    assert memory.recent("telegram", "chat-1", "u-1", 6) == []
    for i in range(4):
        store.record_exchange(turn(f"m{i}", f"user {i}"), perception(),
                              reply(f"bot {i}", sticker_id=f"s-{i}" if i % 2 else None))
    texts = [h.text for h in memory.recent("telegram", "chat-1", "u-1", 5)]
    assert texts == ["bot 1", "user 2", "bot 2", "user 3", "bot 3"]
    full = memory.recent("telegram", "chat-1", "u-1", 100)
    assert [h.role for h in full] == ["user", "bot"] * 4
    assert full[3] == HistoryTurn(role="bot", text="bot 1", sticker_id="s-1",
                                  sticker_description="hug for s-1")
    assert full[1].sticker_id is None and full[1].sticker_description is None
    # The person's turns come back with the emotion perceived when they came.
    assert {h.emotion for h in full if h.role == "user"} == {perception().emotion}
    assert {h.emotion for h in full if h.role == "bot"} == {None}
    assert memory.recent("telegram", "chat-1", "u-1", 0) == []


def test_user_stickers_are_described(database: Database) -> None:
    store, memory = TranscriptStore(database), SqlMemory(database)
    media = [sticker_media("/m/a.webp", emoji="😢", set_name="SadCats", library_id="lib-7"),
             sticker_media("/m/b.webp", emoji=None, set_name=None)]
    store.record_exchange(turn("m1", "", media=media), perception(), reply())
    user_turn = memory.recent("telegram", "chat-1", "u-1", 2)[0]
    assert user_turn.role == "user" and user_turn.text == ""
    assert user_turn.sticker_id == "lib-7"
    assert user_turn.sticker_description == "😢 SadCats; a sticker"
    assert describe_media(None) is None


def test_reset_and_clear(database: Database) -> None:
    store, memory = TranscriptStore(database), SqlMemory(database)
    store.record_exchange(turn("m1", "before"), perception(), reply("old"))
    store.reset_conversation("telegram", "chat-1", "u-1")
    assert memory.recent("telegram", "chat-1", "u-1", 10) == []
    store.record_exchange(turn("m2", "after"), perception(), reply("new"))
    assert [h.text for h in memory.recent("telegram", "chat-1", "u-1", 10)] == ["after", "new"]
    memory.clear("telegram", "chat-1", "u-1")
    assert memory.recent("telegram", "chat-1", "u-1", 10) == []
    memory.clear("telegram", "nowhere", "nobody")  # nothing to clear: no error


def test_memory_is_per_user_per_chat(database: Database) -> None:
    store, memory = TranscriptStore(database), SqlMemory(database)
    store.record_exchange(turn("1", "ann in group", chat_id="g"), perception(), reply("to ann"))
    store.record_exchange(turn("2", "bob in group", chat_id="g", user_id="u-2"),
                          perception(), reply("to bob"))
    store.record_exchange(turn("3", "ann in private"), perception(), reply("private"))
    assert [h.text for h in memory.recent("telegram", "g", "u-1", 10)] == [
        "ann in group", "to ann"]
    assert [h.text for h in memory.recent("telegram", "g", "u-2", 10)] == [
        "bob in group", "to bob"]
    store.reset_conversation("telegram", "g", "u-1")
    assert memory.recent("telegram", "g", "u-1", 10) == []
    assert len(memory.recent("telegram", "g", "u-2", 10)) == 2
    assert len(memory.recent("telegram", "chat-1", "u-1", 10)) == 2
