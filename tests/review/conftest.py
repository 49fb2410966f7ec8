"""Fixtures of the dashboard's tests: a three-sticker library (built in well under a
second, unlike the default pack), logged conversations with stickers on both sides, and
an operator."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from engine.stickers import StickerLibrary
from engine.stickers.library import Sticker
from engine.types import Emotion
from review import auth
from storage.db import Database
from storage.media_store import MediaStore
from storage.models import (
    Conversation,
    EvaluationScore,
    Message,
    ReviewMark,
    User,
)
from storage.transcript import TranscriptStore

PASSWORD = "correct horse battery"
SCRIPT_TEXT = ('<script>window.__pwned = 1</script><b>bold?</b>'
               '<img src=x onerror="window.__pwned=2">')
SECRET_WORDS = "zebra-quartz-7781"  # in a seeded message: must never show without login
STICKERS = [("happy-sun", Emotion.happiness, (250, 200, 20)),
            ("sad-rain", Emotion.sadness, (40, 90, 220)),
            ("angry-fire", Emotion.anger, (220, 40, 30))]


def picture(colour: tuple[int, int, int], fmt: str = "PNG", size: int = 512) -> bytes:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((16, 16, size - 16, size - 16), fill=(*colour, 255))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


@pytest.fixture(scope="session")
def review_library_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review-stickers")
    library = StickerLibrary(root)
    for sticker_id, emotion, colour in STICKERS:
        library.add(Sticker(id=sticker_id, pack="test", emoji=None, name=sticker_id,
                            emotion=emotion, emotion_description=f"Feeling {emotion.value}.",
                            content_description=f"A {sticker_id.replace('-', ' ')}.",
                            recommendation="Use it to share the feeling.", license="CC0"),
                    Image.open(io.BytesIO(picture(colour))))
    library.save()
    return root


@pytest.fixture(scope="session")
def review_library(review_library_root: Path) -> StickerLibrary:
    return StickerLibrary.load(review_library_root)


@dataclass
class Seeded:
    alice_conv: int
    bob_conv: int
    carol_conv: int
    alice_bot: int  # a reply with a library sticker and judge scores
    bob_bot: int
    bob_user_msg: int  # carries a picture from the media store
    alice_user_id: int
    bob_user_id: int
    bob_media: Path


def seed(db: Database, library: StickerLibrary, media: MediaStore,
         now: datetime | None = None) -> Seeded:
    """Three people on three platforms, written as the worker writes them."""
    now = now or datetime.now(UTC)
    TranscriptStore(db).upsert_stickers(s.model_dump(mode="json") for s in library)
    bob_file = media.save(picture((10, 160, 90), "WEBP", 256), "webp")
    with db.session() as s:
        def person(platform: str, uid: str, name: str, day: int) -> tuple[User, Conversation]:
            user = User(platform=platform, platform_user_id=uid, display_name=name,
                        created_at=now - timedelta(days=day))
            s.add(user)
            s.flush()
            conv = Conversation(platform=platform, chat_id=f"chat-{uid}", user_id=user.id,
                                created_at=now - timedelta(days=day))
            s.add(conv)
            s.flush()
            return user, conv

        def exchange(conv: Conversation, n: int, text: str, reply: str, at: datetime, *,
                     media_items=None, emotion="neutral", planned="neutral",
                     sticker: str | None = None, latency=900, safety=None) -> Message:
            user_msg = Message(conversation_id=conv.id, role="user",
                               platform_message_id=str(n), text=text, media=media_items,
                               user_emotion=emotion, user_valence=0.5, created_at=at,
                               safety=safety)
            s.add(user_msg)
            s.flush()
            meta = None
            if sticker:
                lib = library.get(sticker)
                meta = {"id": lib.id, "emotion": lib.emotion.value,
                        "description": lib.content_description,
                        "image_path": str(library.png_file(lib.id)), "mode": "ret", "score": 0.9}
            bot = Message(conversation_id=conv.id, role="bot", platform_message_id=str(n),
                          reply_to=user_msg.id, text=reply, sticker_id=sticker,
                          sticker_meta=meta, user_emotion=emotion, planned_emotion=planned,
                          latency_ms=latency, model_version="v1", safety=safety,
                          created_at=at + timedelta(seconds=1))
            s.add(bot)
            s.flush()
            return bot

        alice, a_conv = person("web", "alice", "Alice", 2)
        happy = library.get("happy-sun")
        alice_bot = exchange(
            a_conv, 1, f"I passed my exam! {SECRET_WORDS}", "That is wonderful news!",
            now - timedelta(days=2),
            media_items=[{"kind": "sticker", "path": str(library.png_file(happy.id)),
                          "format": "png", "library_id": happy.id}],
            emotion="happiness", planned="happiness", sticker="happy-sun", latency=800)
        exchange(a_conv, 2, "Thanks, I'm so relieved.", "You earned it.",
                 now - timedelta(days=2, hours=-1), emotion="happiness", planned="happiness")
        for metric, value in (("judge.emp_txt", 4.2), ("judge.emp_mm", 3.8), ("judge.con", 4.6)):
            s.add(EvaluationScore(run_id="seed-run", source="transcripts", system="v1",
                                  metric=metric, value=value, n=1, message_id=alice_bot.id,
                                  created_at=now - timedelta(days=1)))
            s.add(EvaluationScore(run_id="seed-run", source="transcripts", system="v1",
                                  metric=metric, value=value, n=3,
                                  created_at=now - timedelta(days=1)))

        bob, b_conv = person("telegram", "1001", "Bob", 1)
        bob_bot = exchange(
            b_conv, 1, SCRIPT_TEXT, "I hear you. Please tell me more.", now - timedelta(days=1),
            media_items=[{"kind": "sticker", "path": str(bob_file), "format": "webp",
                          "emoji": "😢"}],
            emotion="sadness", planned="sadness", sticker="sad-rain", latency=1500,
            safety="self_harm")
        s.add(ReviewMark(message_id=bob_bot.id, operator_id=None, kind="flag", source="safety",
                         note="crisis: self_harm"))

        _, c_conv = person("discord", "2002", "Carol", 0)
        exchange(c_conv, 1, "This is so annoying", "That sounds frustrating.",
                 now - timedelta(hours=2), emotion="anger", planned="sadness", latency=1200)
        return Seeded(alice_conv=a_conv.id, bob_conv=b_conv.id, carol_conv=c_conv.id,
                      alice_bot=alice_bot.id, bob_bot=bob_bot.id,
                      bob_user_msg=bob_bot.reply_to, alice_user_id=alice.id,
                      bob_user_id=bob.id, bob_media=bob_file)


@pytest.fixture
def operator(sqlite_database: Database) -> str:
    auth.add_operator(sqlite_database, "olivia", PASSWORD)
    return "olivia"


@dataclass
class Dashboard:
    client: object  # starlette TestClient on a parent app with the dashboard at /review
    app: object  # the review app itself
    db: Database
    seeded: Seeded
    settings: object
    media: MediaStore


def login_csrf(client, base: str = "/review") -> str:
    import re

    page = client.get(f"{base}/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def log_in(client, username: str = "olivia", password: str = PASSWORD):
    return client.post("/review/login", data={"username": username, "password": password,
                                              "csrf_token": login_csrf(client)},
                       follow_redirects=False)


def page_csrf(client, path: str = "/review/") -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


@pytest.fixture
def dashboard(sqlite_database: Database, review_library, review_library_root, tmp_path,
              operator):
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from review.app import create_review_app
    from settings import Settings

    data = tmp_path / "data"
    data.mkdir()
    (data / "stickers").symlink_to(review_library_root, target_is_directory=True)
    settings = Settings(data_dir=data, database_url=str(sqlite_database.url))
    media = MediaStore(settings.media_dir)
    seeded = seed(sqlite_database, review_library, media)
    review = create_review_app(settings, review_library, db=sqlite_database,
                               transcripts=TranscriptStore(sqlite_database), media_store=media,
                               bertscore=False)
    parent = FastAPI()
    parent.mount("/review", review)
    with TestClient(parent) as client:
        yield Dashboard(client, review, sqlite_database, seeded, settings, media)
