"""The web chat answering through PEGS (`tiny` preset): generated stickers are served."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bots.web.app import create_app
from engine.pegs.reply import PegsReplyConfig, PegsReplyModel
from engine.perception import Perceiver
from engine.responder import Responder
from settings import Settings
from tasks.runtime import init_runtime, reset_runtime
from tasks.submit import TurnSubmitter
from tests.engine.pegs.pegs_support import tiny_pegs
from tests.factories import safety_policy


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, rate_limit_burst=30, rate_limit_per_minute=600)


@pytest.fixture
def client(settings, classifier, library):
    model = PegsReplyModel(tiny_pegs(), library, settings.generated_dir,
                           config=PegsReplyConfig(mode="gen", max_new_tokens=8))
    reset_runtime()
    safety = safety_policy(classifier, library, settings.generated_dir)  # checks the caption
    init_runtime(settings, Responder(Perceiver(classifier, library), model, sticker_rate=1.0,
                                     safety=safety))
    submitter = TurnSubmitter(settings)
    with TestClient(create_app(settings, submitter, library)) as test_client:
        test_client.get("/")  # the page's identity cookie, as a browser gets it
        yield test_client
    submitter.close()
    reset_runtime()


def test_a_generated_sticker_reaches_the_page(client) -> None:
    stickers = []
    for text in ["I failed my exam", "I feel so bad about it", "what do I do now"]:
        response = client.post("/api/chat/messages", json={"text": text})
        assert response.status_code == 200, response.text
        stickers.append(response.json()["reply"]["sticker"])
    made = [s for s in stickers if s is not None]
    assert made, "a sticker rate of 1 forces one within two turns"
    sticker = made[0]
    assert sticker["mode"] == "gen" and sticker["url"].startswith("/generated/")
    image = client.get(sticker["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["../stickerbot.db", "nothere.png", "0123456789abcdef0.png",
                                  "%2e%2e%2fstickerbot.db"])
def test_the_generated_route_serves_nothing_else(client, name: str) -> None:
    assert client.get(f"/generated/{name}").status_code == 404
