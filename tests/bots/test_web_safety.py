"""Safety through the web chat's real app, queue (eager Celery) and runtime: crisis replies
and their flags, /forget on every store, logs without message text, and stickers people
send never reaching anybody else."""

from __future__ import annotations

import logging
import sqlite3
import uuid

import pytest
import redis
from fastapi.testclient import TestClient

from bots.web.app import create_app
from engine.safety.crisis import Thresholds
from settings import Settings
from storage.redis_memory import RedisMemory
from tasks.runtime import init_runtime, reset_runtime
from tasks.submit import TurnSubmitter
from tests.bots.web_helpers import WEB_SECRET, bearer
from tests.engine import media_samples as samples
from tests.factories import committed_crisis_classifier, safety_policy, tiny_responder

SECRET = "my purple elephant named Bartholomew"


def make_client(settings: Settings, classifier, library, index):
    reset_runtime()
    safety = safety_policy(classifier, library, settings.generated_dir)
    init_runtime(settings, tiny_responder(classifier, library, index, sticker_rate=1.0,
                                          safety=safety))
    submitter = TurnSubmitter(settings)
    return TestClient(create_app(settings, submitter, library)), submitter


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, rate_limit_burst=50, rate_limit_per_minute=600,
                    ocr=False, web_secret=WEB_SECRET)


@pytest.fixture
def client(settings, classifier, library, index):
    test_client, submitter = make_client(settings, classifier, library, index)
    with test_client:
        yield test_client
    submitter.close()
    reset_runtime()


def rows(settings: Settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.data_dir / "stickerbot.db") as db:
        return db.execute(sql).fetchall()


def say(client, text: str, user: str = "ann", **extra) -> dict:
    response = client.post("/api/chat/messages", json={"text": text, **extra},
                           headers=bearer(user))
    assert response.status_code == 200, response.text
    return response.json()["reply"]


def test_a_crisis_gets_the_calm_reply_no_sticker_and_a_flag(client, settings) -> None:
    say(client, "hello there")  # a sticker rate of 1: ordinary turns get stickers
    reply = say(client, "I'm going to kill myself tonight, I have the pills ready")
    assert "findahelpline.com" in reply["text"] and reply["sticker"] is None
    [(user_safety,), (bot_safety,)] = rows(
        settings, "SELECT safety FROM messages WHERE id > 2 ORDER BY id")
    assert user_safety == bot_safety == "self_harm"
    assert rows(settings, "SELECT m.role, r.kind, r.source, r.note, r.operator_id FROM "
                          "review_marks r JOIN messages m ON m.id = r.message_id") == [
        ("bot", "flag", "safety", "crisis: self_harm (named plainly)", None)]
    assert rows(settings, "SELECT model_version FROM messages WHERE id = 4") == [
        ("safety-template",)]


def test_sticker_meaning_counts_with_the_text(client, library) -> None:
    [skull] = [s for s in library if s.emoji == "☠️"]  # "skull and crossbones" in the pack
    worried = say(client, "this will be me soon", user="bo", sticker_id=skull.id)
    assert worried["safety"] is not None and worried["sticker"] is None  # crisis or check-in
    joke = say(client, "lol", user="cy", sticker_id=skull.id)
    assert joke["safety"] is None


def test_message_text_never_reaches_the_log_at_info(client, caplog) -> None:
    caplog.set_level(logging.INFO)
    say(client, f"I feel great today about {SECRET}")
    say(client, f"I want to kill myself because of {SECRET}")
    client.post("/api/chat/messages", data={"text": SECRET}, headers=bearer("ann"),
                files={"sticker": ("x.webp", b"RIFF....WEBPbroken", "image/webp")})
    assert caplog.records, "the turns were logged at INFO at all"
    for record in caplog.records:
        assert "Bartholomew" not in record.getMessage(), record.getMessage()
        assert "Bartholomew" not in (record.exc_text or "")


def test_stickers_people_send_are_never_sent_to_anyone_else(client, library) -> None:
    theirs = samples.make_webp((96, 96))
    sent = client.post("/api/chat/messages", data={"text": "look at mine"},
                       headers=bearer("dee"),
                       files={"sticker": ("mine.webp", theirs, "image/webp")})
    assert sent.status_code == 200
    for text in ["hello", "I got the job!", "my cat is cute", "what a day", "nice"]:
        sticker = say(client, text, user="eve")["sticker"]
        assert sticker is None or (sticker["id"] in library
                                   and sticker["url"] == f"/stickers/{sticker['id']}.png")


def test_forget_deletes_messages_memory_and_files(tmp_path, redis_url, classifier, library,
                                                  index) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, rate_limit_burst=50,
                        rate_limit_per_minute=600, ocr=False, web_secret=WEB_SECRET)
    test_client, submitter = make_client(settings, classifier, library, index)
    user = f"forget-{uuid.uuid4().hex[:8]}"
    try:
        with test_client as client:
            upload = client.post("/api/chat/messages", data={"text": SECRET},
                                 headers=bearer(user),
                                 files={"sticker": ("s.png", samples.make_png((40, 40)),
                                                    "image/png")})
            assert upload.status_code == 200, upload.text
            say(client, "I want to end it all", user=user)  # a crisis: flagged too
            say(client, "someone else", user="other")
            cache = redis.Redis.from_url(redis_url)
            key = RedisMemory(cache, None).key("web", user, user)  # type: ignore[arg-type]
            assert cache.llen(key) == 4
            [(media,)] = rows(settings, "SELECT media FROM messages WHERE role='user' AND "
                                        "text LIKE '%Bartholomew%'")
            stored = settings.media_dir.glob("*/*/*.png")
            assert len(list(stored)) == 1

            refused = client.post("/api/chat/forget", json={}, headers=bearer(user))
            assert refused.status_code == 400  # needs the confirmation
            done = client.post("/api/chat/forget", json={"confirm": True},
                               headers=bearer(user))
            assert done.status_code == 200 and done.json()["forgotten"]["files"] == 1
            assert cache.exists(key) == 0
            assert list(settings.media_dir.glob("*/*/*.png")) == []
            assert rows(settings, "SELECT count(*) FROM messages WHERE text LIKE "
                                  "'%Bartholomew%' OR safety IS NOT NULL") == [(0,)]
            assert rows(settings, "SELECT count(*) FROM review_marks") == [(0,)]
            assert rows(settings, "SELECT platform_user_id FROM users") == [("other",)]
            assert say(client, "hello again", user=user)["text"]  # they may start afresh
            cache.close()
    finally:
        submitter.close()
        reset_runtime()


def test_a_check_in_asks_and_reads_the_answer_even_after_a_restart(
        settings, classifier, library, index) -> None:
    """Passive risk gets the written question; "yes" on the next turn, read by a new
    runtime (a restart), gets the crisis reply; "no" carries on without asking again."""
    crisis = committed_crisis_classifier(str(classifier.encoder.model_path))
    original = crisis.thresholds
    # Every turn is "uncertain" and none a clear crisis: the flow is what is tested
    # here, not the thresholds (tests/engine/safety and tests/training/safety are).
    crisis.thresholds = Thresholds(crisis=1.01, check_in=0.0)
    try:
        test_client, submitter = make_client(settings, classifier, library, index)
        with test_client as client:
            asked = say(client, "some days I wish I just wouldn't wake up", user="fay")
            assert asked["safety"] == "check_in_self" and asked["sticker"] is None
            assert "are you having thoughts of ending your life" in asked["text"]
            assert "findahelpline.com" not in asked["text"]
            assert say(client, "my exam went badly", user="gus")["safety"] == "check_in_self"
        submitter.close()

        test_client, submitter = make_client(settings, classifier, library, index)  # restart
        with test_client as client:
            answer = say(client, "yeah, kind of", user="fay")
            assert answer["safety"] == "self_harm" and "findahelpline.com" in answer["text"]
            crisis.thresholds = Thresholds(crisis=1.01, check_in=1.01)  # a calm next turn
            thanks = say(client, "ok. thank you for the numbers", user="fay")
            assert thanks["safety"] is None and thanks["sticker"] is None  # after helplines
            crisis.thresholds = Thresholds(crisis=1.01, check_in=0.0)
            carry_on = say(client, "no, just stressed about it", user="gus")
            assert carry_on["safety"] is None and carry_on["text"]
            assert carry_on["sticker"] is None  # no playful picture right after the question
            again = say(client, "I feel so hopeless about the retake", user="gus")
            assert again["safety"] is None  # no second question so soon
        submitter.close()
        assert rows(settings, "SELECT role, safety FROM messages WHERE safety LIKE "
                              "'check_in%' ORDER BY id") == [
            ("user", "check_in_self"), ("bot", "check_in_self"),
            ("user", "check_in_self"), ("bot", "check_in_self")]
    finally:
        crisis.thresholds = original
        reset_runtime()
