"""The web chat's JSON API through the real app, queue (eager Celery) and runtime."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from bots.web.app import create_app
from settings import Settings
from tasks import runtime as runtime_module
from tasks.runtime import init_runtime, reset_runtime
from tasks.submit import TurnSubmitter
from tests.bots.web_helpers import WEB_SECRET, bearer
from tests.engine import media_samples as samples
from tests.factories import tiny_responder


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, max_upload_bytes=300_000, max_text_chars=500,
                    rate_limit_burst=30, rate_limit_per_minute=600, web_secret=WEB_SECRET)


@pytest.fixture
def client(settings, classifier, library, index):
    reset_runtime()
    init_runtime(settings, tiny_responder(classifier, library, index))
    submitter = TurnSubmitter(settings)
    with TestClient(create_app(settings, submitter, library)) as test_client:
        test_client.headers.update(bearer("ann"))  # "ann" unless told otherwise
        yield test_client
    submitter.close()
    reset_runtime()


def stored_rows(settings: Settings) -> list[tuple]:
    with sqlite3.connect(settings.data_dir / "stickerbot.db") as db:
        return db.execute("SELECT role, text, sticker_id, user_emotion, latency_ms, "
                          "model_version FROM messages ORDER BY id").fetchall()


def post_file(client, data: bytes, name: str, text: str = "", headers=None):
    return client.post("/api/chat/messages", data={"text": text}, headers=headers,
                       files={"sticker": (name, data, "application/octet-stream")})


def test_text_message_gets_a_reply_and_both_turns_are_stored(client, settings) -> None:
    response = client.post("/api/chat/messages", json={"text": "I got the job!"})
    assert response.status_code == 200, response.text
    reply = response.json()["reply"]
    assert reply["text"]
    assert reply["user_emotion"] == "happiness"
    assert reply["sticker"]["url"].startswith("/stickers/")
    assert client.get(reply["sticker"]["url"]).headers["content-type"] == "image/png"
    rows = stored_rows(settings)
    assert [r[0] for r in rows] == ["user", "bot"]
    assert rows[0][1] == "I got the job!" and rows[0][3] == "happiness"
    assert rows[1][2] == reply["sticker"]["id"] and rows[1][4] > 0 and rows[1][5] == "tiny+ret"


@pytest.mark.parametrize("name, make", [
    ("s.png", samples.make_png), ("s.webp", samples.make_webp), ("s.jpg", samples.make_jpeg),
    ("s.gif", samples.make_gif), ("s.tgs", samples.make_tgs), ("s.webm", samples.make_webm),
])
def test_every_sticker_format_is_accepted(client, name, make) -> None:
    response = post_file(client, make(), name)
    assert response.status_code == 200, response.text
    assert response.json()["reply"]["text"]


def test_a_library_sticker_is_recognised_by_id_and_by_upload(client, settings,
                                                              library) -> None:
    sad = library.by_emotion("sadness")[0]
    by_id = client.post("/api/chat/messages", json={"sticker_id": sad.id},
                        headers=bearer("bo"))
    assert by_id.json()["reply"]["user_emotion"] == "sadness"
    upload = post_file(client, library.webp_file(sad.id).read_bytes(), "x.webp",
                       headers=bearer("cy"))
    assert upload.json()["reply"]["user_emotion"] == "sadness"


def test_same_message_id_is_answered_once(client, settings) -> None:
    body = {"text": "hello there", "message_id": "abc-1"}
    first = client.post("/api/chat/messages", json=body).json()
    second = client.post("/api/chat/messages", json=body).json()
    assert first["reply"]["text"] == second["reply"]["text"]
    assert len(stored_rows(settings)) == 2


@pytest.mark.parametrize("request_kwargs, status, code", [
    ({"json": {"text": "   "}}, 400, "empty"),
    ({"json": {"text": "x" * 501}}, 413, "text_too_long"),
    ({"json": {"user": "<script>", "text": "hi"}}, 400, "bad_user"),
    ({"json": {"sticker_id": "../../etc/passwd"}}, 400, "unknown_sticker"),
    ({"json": {"text": "hi", "message_id": "a b"}}, 400, "bad_message_id"),
    ({"json": ["not", "an", "object"]}, 400, "bad_json"),
    ({"content": b"{broken", "headers": {"content-type": "application/json"}}, 400, "bad_json"),
    ({"content": b"hi", "headers": {"content-type": "text/plain"}}, 415, "bad_content_type"),
])
def test_bad_requests_get_a_clear_error(client, request_kwargs, status, code) -> None:
    response = client.post("/api/chat/messages", **request_kwargs)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


@pytest.mark.parametrize("name, data, status, code", [
    ("big.png", b"\x89PNG" + b"0" * 400_000, 413, "too_large"),
    ("cut.png", samples.truncate(samples.make_png()), 422, "corrupt"),
    ("cut.webp", samples.truncate(samples.make_webp()), 422, "corrupt"),
    ("x.tgs", b"this is not gzip", 422, "corrupt"),
    ("notes.txt", b"just some text, not a picture", 415, "unsupported"),
    ("bomb.png", samples.make_png_claiming(50_000, 50_000), 413, "too_many_pixels"),
    ("empty.png", b"", 400, "empty_file"),
])
def test_bad_files_get_a_clear_error_and_the_next_message_is_answered(
        client, name, data, status, code) -> None:
    response = post_file(client, data, name)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    ok = client.post("/api/chat/messages", json={"text": "still there?"})
    assert ok.status_code == 200


def test_a_flood_is_refused_politely(client, settings, library) -> None:
    strict = settings.model_copy(update={"rate_limit_burst": 3, "rate_limit_per_minute": 1})
    submitter = TurnSubmitter(strict)
    with TestClient(create_app(strict, submitter, library)) as flood_client:
        responses = [flood_client.post("/api/chat/messages", json={"text": "spam"},
                                       headers=bearer("fl")) for _ in range(6)]
    submitter.close()
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429, 429]
    assert "wait" in responses[-1].json()["error"]["message"]
    assert int(responses[-1].headers["retry-after"]) > 0
    other = client.post("/api/chat/messages", json={"text": "hi"},
                        headers=bearer("other"))
    assert other.status_code == 200


def test_a_dead_backend_is_a_503_not_a_crash(client, settings) -> None:
    from storage.db import Database

    runtime_module._runtime.db = Database("postgresql+psycopg://u:p@127.0.0.1:1/none")
    runtime_module._runtime.transcripts.db = runtime_module._runtime.db
    response = client.post("/api/chat/messages", json={"text": "hello?"})
    assert response.status_code == 503
    assert "try again" in response.json()["error"]["message"]


def test_page_sticker_list_and_unknown_sticker_file(client, library) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/static/chat.js" in page.text
    assert client.get("/static/chat.js").status_code == 200
    listed = client.get("/api/stickers", params={"emotion": "fear"}).json()["stickers"]
    assert listed and all(s["emotion"] == "fear" for s in listed)
    assert client.get("/stickers/nope.png").status_code == 404
    assert client.get("/stickers/..%2F..%2Fetc%2Fpasswd.png").status_code == 404
    assert client.get("/healthz").json()["stickers"] == len(library)
