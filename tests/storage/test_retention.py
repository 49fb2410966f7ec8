"""The retention period: old conversations are purged with their media; orphaned files go."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from sqlalchemy import func, select

from engine.types import Emotion, Media, MediaKind, Reply, StickerChoice, UserTurn
from storage.db import Database
from storage.media_store import MediaStore
from storage.models import Conversation, Message, ReviewMark, User, utcnow
from storage.retention import purge_days, purge_older_than, purge_orphan_media
from storage.transcript import TranscriptStore


def exchange(store: TranscriptStore, media: MediaStore, user: str, n: int, *,
             data: bytes | None = None, sticker: StickerChoice | None = None) -> None:
    files = [Media(kind=MediaKind.sticker, path=str(media.save(data, "png")), format="png")
             ] if data else []
    turn = UserTurn(platform="web", chat_id=user, user_id=user, message_id=str(n),
                    text=f"message {n}", media=files)
    reply = Reply(text="hi", sticker=sticker, user_emotion=Emotion.neutral, user_valence=0.0,
                  planned_emotion=Emotion.neutral, safety_note="crisis: self_harm")
    assert store.record_exchange(turn, None, reply)


def age(db: Database, user: str, days: int) -> None:
    """Move a person's rows `days` into the past."""
    past = utcnow() - timedelta(days=days)
    with db.session() as s:
        uid = s.execute(select(User.id).where(User.platform_user_id == user)).scalar_one()
        s.query(User).filter(User.id == uid).update({"created_at": past})
        convs = select(Conversation.id).where(Conversation.user_id == uid)
        s.query(Conversation).filter(Conversation.user_id == uid).update({"created_at": past})
        s.query(Message).filter(Message.conversation_id.in_(convs)).update(
            {"created_at": past}, synchronize_session=False)


def old_files(media: MediaStore) -> None:
    for path in media.root.rglob("*"):
        if path.is_file():
            os.utime(path, (time.time() - 7200, time.time() - 7200))


def count(db: Database, model) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_old_conversations_go_with_their_files_and_recent_ones_stay(database, tmp_path) -> None:
    media = MediaStore(tmp_path / "media")
    store = TranscriptStore(database)
    exchange(store, media, "old", 1, data=b"\x89PNG old one")
    exchange(store, media, "new", 1, data=b"\x89PNG new one")
    age(database, "old", 40)
    old_files(media)
    report = purge_older_than(database, media, utcnow() - timedelta(days=30))
    assert (report.messages, report.conversations, report.users, report.files) == (2, 1, 1, 1)
    assert count(database, Message) == 2 and count(database, ReviewMark) == 1
    assert [p.name for p in media.root.rglob("*.png")] == [
        media.path_for(b"\x89PNG new one", "png").name]


def test_a_recent_message_keeps_its_old_conversation(database, tmp_path) -> None:
    media = MediaStore(tmp_path / "media")
    store = TranscriptStore(database)
    exchange(store, media, "ann", 1)
    age(database, "ann", 40)
    exchange(store, media, "ann", 2)  # today
    report = purge_days(database, media, 30)
    assert report.messages == 2 and report.conversations == 0 and report.users == 0
    with database.session() as s:
        assert list(s.execute(select(Message.text).where(Message.role == "user")).scalars()) \
            == ["message 2"]


def test_orphaned_media_and_generated_stickers_are_removed_after_a_grace(database,
                                                                         tmp_path) -> None:
    media = MediaStore(tmp_path / "media")
    generated = media.root / "generated"
    generated.mkdir()
    kept, dropped = generated / ("ab" * 12 + ".png"), generated / ("cd" * 12 + ".png")
    kept.write_bytes(b"png")
    dropped.write_bytes(b"png")
    sent = StickerChoice(id=f"gen-{kept.stem}", emotion=Emotion.happiness, description="",
                         image_path=str(kept), mode="gen")
    store = TranscriptStore(database)
    exchange(store, media, "ann", 1, data=b"\x89PNG theirs", sticker=sent)
    stray = media.save(b"\x89PNG never recorded", "png")
    assert purge_orphan_media(database, media) == 0  # all younger than the grace period
    old_files(media)
    assert purge_orphan_media(database, media) == 2
    assert kept.exists() and not dropped.exists() and not stray.exists()
    assert media.path_for(b"\x89PNG theirs", "png").exists()


def test_no_retention_period_purges_files_only(database, tmp_path) -> None:
    media = MediaStore(tmp_path / "media")
    exchange(TranscriptStore(database), media, "ann", 1)
    age(database, "ann", 4000)
    assert purge_days(database, media, 0).messages == 0
    assert count(database, Message) == 2


def test_a_file_sent_again_is_not_purged_before_its_turn_is_recorded(database,
                                                                     tmp_path) -> None:
    """Issue 21: a picture stored long ago and orphaned, sent again now: its turn is not
    recorded yet, but the purge must wait a grace period from this send."""
    media = MediaStore(tmp_path / "media")
    path = media.save(b"\x89PNG once", "png")
    old_files(media)
    assert media.save(b"\x89PNG once", "png") == path  # sent again, in flight
    assert purge_orphan_media(database, media) == 0 and path.exists()


def test_a_leased_file_outlives_forget_and_purge_until_released(database, tmp_path) -> None:
    media = MediaStore(tmp_path / "media")
    path = media.path_for(b"\x89PNG shared", "png")
    with media.lease(path):
        media.save(b"\x89PNG shared", "png")
        os.utime(path, (time.time() - 7200, time.time() - 7200))
        assert media.delete([path]) == 0
        assert purge_orphan_media(database, media, grace_s=0) == 0 and path.exists()
    assert media.delete([path]) == 1
    assert list(media.root.rglob("*.lease")) == []
