"""TranscriptStore on both backends: round trips, idempotency, races, /reset, /forget."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from engine.types import Emotion
from storage.db import Database
from storage.models import Conversation, Message, Sticker, User
from storage.transcript import TranscriptStore
from tests.storage.helpers import perception, reply, sticker_media, turn


def _count(db: Database, model: type) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_round_trip(database: Database) -> None:
    store = TranscriptStore(database)
    t = turn("m1", "I failed my exam", media=[sticker_media("/media/ab/cd/x.webp")])
    assert store.find_reply(t) is None
    r = reply()
    store.record_exchange(t, perception(), r)
    assert store.find_reply(t) == r
    with database.session() as s:
        user_row, bot_row = s.scalars(select(Message).order_by(Message.id)).all()
        assert (user_row.role, bot_row.role) == ("user", "bot")
        assert bot_row.reply_to == user_row.id
        assert user_row.text == "I failed my exam" and user_row.user_emotion == "sadness"
        assert user_row.cause_words == ["exam", "failed"]
        assert user_row.media[0]["path"] == "/media/ab/cd/x.webp"
        assert user_row.media[0]["emoji"] == "😢"
        assert bot_row.sticker_id == "noto-1f917" and bot_row.planned_emotion == "happiness"
        assert (bot_row.latency_ms, bot_row.model_version) == (321, "tiny-0")
        assert bot_row.created_at.tzinfo is not None
        user = s.scalars(select(User)).one()
        assert (user.platform, user.platform_user_id, user.display_name) == (
            "telegram", "u-1", "Ann")


def test_reply_without_sticker_and_without_perception(database: Database) -> None:
    store = TranscriptStore(database)
    t = turn("m1")
    r = reply(sticker_id=None)
    store.record_exchange(t, None, r)
    found = store.find_reply(t)
    assert found == r and found.sticker is None
    with database.session() as s:
        user_row = s.scalars(select(Message).where(Message.role == "user")).one()
        assert user_row.user_emotion == "sadness" and user_row.media is None


def test_find_reply_is_per_message_chat_and_user(database: Database) -> None:
    store = TranscriptStore(database)
    store.record_exchange(turn("m1"), perception(), reply("first"))
    assert store.find_reply(turn("m2")) is None
    assert store.find_reply(turn("m1", chat_id="chat-2")) is None
    assert store.find_reply(turn("m1", user_id="u-2")) is None
    assert store.find_reply(turn("m1", platform="discord")) is None
    assert store.find_reply(turn("m1")).text == "first"


def test_redelivery_stores_one_pair(database: Database) -> None:
    store = TranscriptStore(database)
    t = turn("m1")
    store.record_exchange(t, perception(), reply("first answer"))
    store.record_exchange(t, perception(), reply("second answer"))  # quietly ignored
    assert _count(database, Message) == 2
    assert _count(database, User) == 1 and _count(database, Conversation) == 1
    assert store.find_reply(t).text == "first answer"


def test_concurrent_redelivery_race(database: Database) -> None:
    """Workers racing on one message: the unique key decides, nobody raises."""
    store = TranscriptStore(database)
    workers = 6
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            store.record_exchange(turn("race-1", user_name=f"Ann{i}"), perception(),
                                  reply(f"answer {i}"))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    assert _count(database, Message) == 2
    assert _count(database, User) == 1 and _count(database, Conversation) == 1
    stored = store.find_reply(turn("race-1"))
    assert stored is not None and stored.text.startswith("answer ")
    with database.session() as s:
        user_row = s.scalars(select(Message).where(Message.role == "user")).one()
        bot_row = s.scalars(select(Message).where(Message.role == "bot")).one()
        assert bot_row.reply_to == user_row.id


def test_stickers_enabled_default_and_toggle(database: Database) -> None:
    store = TranscriptStore(database)
    assert store.stickers_enabled("telegram", "u-1") is True
    store.set_stickers_enabled("telegram", "u-1", False)
    assert store.stickers_enabled("telegram", "u-1") is False
    assert store.stickers_enabled("discord", "u-1") is True  # another platform's account
    store.record_exchange(turn("m1"), perception(), reply())  # a later message keeps it
    assert store.stickers_enabled("telegram", "u-1") is False
    store.set_stickers_enabled("telegram", "u-1", True)
    assert store.stickers_enabled("telegram", "u-1") is True


def test_sticker_stats_and_recent_ids(database: Database) -> None:
    store = TranscriptStore(database)
    assert store.bot_sticker_stats("telegram", "chat-1", "u-1") == (0, 0)
    assert store.recent_bot_sticker_ids("telegram", "chat-1", "u-1", 5) == []
    for i, sid in enumerate(["s-a", None, "s-b", "s-c", None]):
        store.record_exchange(turn(f"m{i}"), perception(), reply(sticker_id=sid))
    store.record_exchange(turn("other", user_id="u-2"), perception(), reply(sticker_id="s-z"))
    assert store.bot_sticker_stats("telegram", "chat-1", "u-1") == (5, 3)
    assert store.recent_bot_sticker_ids("telegram", "chat-1", "u-1", 2) == ["s-c", "s-b"]
    assert store.recent_bot_sticker_ids("telegram", "chat-1", "u-1", 10) == ["s-c", "s-b", "s-a"]
    assert store.recent_bot_sticker_ids("telegram", "chat-1", "u-1", 0) == []

    store.reset_conversation("telegram", "chat-1", "u-1")
    assert store.bot_sticker_stats("telegram", "chat-1", "u-1") == (0, 0)
    store.record_exchange(turn("m9"), perception(), reply(sticker_id="s-d"))
    assert store.bot_sticker_stats("telegram", "chat-1", "u-1") == (1, 1)
    # Recently seen stickers still count after /reset: the person saw them.
    assert store.recent_bot_sticker_ids("telegram", "chat-1", "u-1", 2) == ["s-d", "s-c"]
    assert _count(database, Message) == 14  # /reset keeps the transcript


def test_forget_user(database: Database) -> None:
    store = TranscriptStore(database)
    shared, own, theirs = "/m/shared.webp", "/m/own.webp", "/m/theirs.webp"
    store.record_exchange(turn("1", media=[sticker_media(shared)]), perception(), reply())
    store.record_exchange(turn("2", chat_id="group", media=[sticker_media(own)]),
                          perception(), reply())
    store.record_exchange(turn("3", chat_id="group"), None, reply(sticker_id=None))
    # Another person in the same group chat, and the same account id on another platform.
    store.record_exchange(turn("1", chat_id="group", user_id="u-2",
                               media=[sticker_media(shared), sticker_media(theirs)]),
                          perception(), reply())
    store.record_exchange(turn("1", platform="discord"), perception(), reply())
    store.set_stickers_enabled("telegram", "u-1", False)

    paths = store.forget_user("telegram", "u-1")
    assert paths == [own]  # the shared file is still used by u-2
    with database.session() as s:
        users = set(map(tuple, s.execute(select(User.platform, User.platform_user_id))))
        assert users == {("telegram", "u-2"), ("discord", "u-1")}
        convs = set(map(tuple, s.execute(select(Conversation.platform, Conversation.chat_id))))
        assert convs == {("telegram", "group"), ("discord", "chat-1")}
    assert _count(database, Message) == 4
    assert store.find_reply(turn("1")) is None
    assert store.find_reply(turn("1", chat_id="group", user_id="u-2")) is not None
    assert store.stickers_enabled("telegram", "u-1") is True  # settings went too
    assert store.forget_user("telegram", "u-1") == []  # forgetting twice is harmless
    assert sorted(store.forget_user("telegram", "u-2")) == [shared, theirs]


def test_upsert_stickers(database: Database) -> None:
    store = TranscriptStore(database)
    meta = {"id": "noto-1f622", "pack": "noto", "emoji": "😢", "name": "crying face",
            "emotion": "sadness", "emotion_description": "sad",
            "content_description": "a crying face", "recommendation": "comfort",
            "license": "OFL-1.1", "png_path": "/lib/noto-1f622.png", "extra": "ignored"}
    assert store.upsert_stickers([meta, {"id": "noto-1f600", "pack": "noto",
                                         "emotion": "happiness"}]) == 2
    assert store.upsert_stickers([{**meta, "recommendation": "console gently"}]) == 1
    assert store.upsert_stickers([]) == 0
    with database.session() as s:
        rows = {r.id: r for r in s.scalars(select(Sticker))}
    assert set(rows) == {"noto-1f622", "noto-1f600"}
    assert rows["noto-1f622"].recommendation == "console gently"
    assert rows["noto-1f622"].emoji == "😢" and rows["noto-1f622"].webp_path is None
    assert rows["noto-1f600"].png_path == "" and rows["noto-1f600"].emoji is None
    with pytest.raises(ValueError):
        store.upsert_stickers([{"pack": "noto", "emotion": "sadness"}])
    with pytest.raises(ValueError):
        store.upsert_stickers([{"id": "x", "pack": "noto", "emotion": "joyful"}])


def test_find_reply_rebuilds_library_sticker_without_meta(database: Database) -> None:
    """Rows imported without the full StickerChoice fall back to the library metadata."""
    store = TranscriptStore(database)
    store.upsert_stickers([{"id": "noto-1f917", "pack": "noto", "emotion": "happiness",
                            "content_description": "hugging face", "png_path": "/lib/h.png"}])
    store.record_exchange(turn("m1"), perception(), reply())
    with database.session() as s:
        s.scalars(select(Message).where(Message.role == "bot")).one().sticker_meta = None
    sticker = store.find_reply(turn("m1")).sticker
    assert sticker is not None
    assert (sticker.id, sticker.emotion, sticker.description, sticker.image_path) == (
        "noto-1f917", Emotion.happiness, "hugging face", "/lib/h.png")
