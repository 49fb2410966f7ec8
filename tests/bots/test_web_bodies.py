"""The web chat's bodies as FastAPI reads them (bots/web/bodies.py): each body type
reaches its own endpoint, and a body that does not fit gets a clear 4xx naming what is
wrong, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bots.web.app import create_app
from engine.stickers import StickerLibrary
from settings import Settings
from storage.transcript import TranscriptStore
from tests.bots.web_helpers import WEB_SECRET, HeldSubmitter, bearer


@pytest.fixture
def client(tmp_path, sqlite_database):
    settings = Settings(data_dir=tmp_path, web_secret=WEB_SECRET, max_text_chars=500)
    transcripts = TranscriptStore(sqlite_database)
    app = create_app(settings, HeldSubmitter(transcripts), StickerLibrary(settings.stickers_dir),
                     transcripts=transcripts)
    with TestClient(app, headers=bearer("ann")) as test_client:
        yield test_client


def multipart(**fields: str) -> dict:
    """Text fields sent as multipart/form-data (httpx sends `data` alone url-encoded)."""
    return {"files": {name: (None, value) for name, value in fields.items()}}


def error_of(response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def test_a_form_is_answered_and_a_blank_message_id_means_none_given(client) -> None:
    response = client.post("/api/chat/messages", **multipart(text="hi", message_id=""))
    assert response.status_code == 200, response.text
    assert response.json()["reply"]["text"]


def test_a_form_with_a_bad_message_id_is_refused_like_json(client) -> None:
    response = client.post("/api/chat/messages", **multipart(text="hi", message_id="a b"))
    assert error_of(response)[:2] == (400, "bad_message_id")


def test_a_field_of_the_wrong_type_is_named(client) -> None:
    status, code, message = error_of(client.post("/api/chat/messages",
                                                 json={"text": {"nested": 1}}))
    assert (status, code) == (400, "bad_request") and message.startswith("text:")


def test_a_broken_multipart_body_is_a_400(client) -> None:
    response = client.post("/api/chat/messages", content=b"--xyz\r\nnot a part",
                           headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert error_of(response)[:2] == (400, "bad_form")


def test_forget_takes_json_only_and_confirm_must_be_true(client) -> None:
    form = client.post("/api/chat/forget", **multipart(confirm="true"))
    assert error_of(form)[:2] == (415, "bad_content_type")
    for body in ({"confirm": "yes"}, {"confirm": False}, {}):
        assert error_of(client.post("/api/chat/forget", json=body))[:2] == (400, "confirm")
    done = client.post("/api/chat/forget", json={"confirm": True})
    assert done.status_code == 200 and done.json()["forgotten"]["message"]
