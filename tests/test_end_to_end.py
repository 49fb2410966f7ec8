"""End to end: `stickerbot serve` as its own process, on the real default models.

Text and a sticker file go in through the JSON API; replies come back with stickers
that fit the planned emotion, and both sides of each turn are in the database.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from engine.planning import plan_reply
from engine.types import Emotion, Perception
from tests.serve_process import chat_client, serve


@pytest.fixture(scope="module")
def server(tmp_path_factory, pack_root: Path, model_cache: Path):
    data_dir = tmp_path_factory.mktemp("e2e-data")
    # The retrieval reply model on the untuned LLM, whose stickers follow the plan; the
    # default (tuned) model: `default_server`; PEGS: test_pegs_end_to_end.py.
    with serve(data_dir, pack_root, model_cache, STICKERBOT_REPLY_MODEL="retrieval",
               STICKERBOT_LLM_TUNED="false") as (base, log_path):
        yield base, data_dir, log_path


@pytest.fixture(scope="module")
def default_server(tmp_path_factory, pack_root: Path, model_cache: Path):
    data_dir = tmp_path_factory.mktemp("e2e-default")
    with serve(data_dir, pack_root, model_cache) as (base, log_path):
        yield base, data_dir, log_path


def assert_fits_plan(reply: dict) -> None:
    plan = plan_reply(Perception(emotion=Emotion(reply["user_emotion"]),
                                 valence=reply["user_valence"], confidence=1.0))
    assert reply["planned_emotion"] == plan.emotion.value
    assert reply["sticker"] is not None
    assert plan.sticker_fits(Emotion(reply["sticker"]["emotion"])), reply


def test_a_conversation_with_text_and_a_sticker_file(server, library) -> None:
    base, data_dir, log_path = server
    with chat_client(base, timeout=120) as client:
        first = client.post("/api/chat/messages",
                            json={"text": "I just lost my job and I feel terrible"})
        assert first.status_code == 200, first.text
        reply = first.json()["reply"]
        assert len(reply["text"].split()) >= 3
        assert reply["user_emotion"] == "sadness"
        assert_fits_plan(reply)
        assert client.get(reply["sticker"]["url"]).content[:4] == b"\x89PNG"

        party = next(s for s in library if s.emoji == "🎉")
        webp = io.BytesIO()
        Image.open(library.png_file(party.id)).resize((300, 300)).save(webp, "WEBP")
        second = client.post("/api/chat/messages", data={"text": ""},
                             files={"sticker": ("party.webp", webp.getvalue(), "image/webp")})
        assert second.status_code == 200, second.text
        reply2 = second.json()["reply"]
        assert reply2["text"]
        assert reply2["user_emotion"] == "happiness"
        assert_fits_plan(reply2)
        assert reply2["sticker"]["id"] != reply["sticker"]["id"]

    with sqlite3.connect(data_dir / "stickerbot.db") as db:
        rows = db.execute("SELECT role, text, sticker_id, user_emotion, planned_emotion, "
                          "latency_ms, model_version, media FROM messages ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["user", "bot", "user", "bot"]
    assert rows[0][1] == "I just lost my job and I feel terrible" and rows[0][3] == "sadness"
    assert rows[1][1] == reply["text"] and rows[1][2] == reply["sticker"]["id"]
    assert rows[1][4] == reply["planned_emotion"] and rows[1][5] > 0
    assert rows[1][6].startswith("smollm2-135m-instruct")
    assert "webp" in rows[2][7]
    assert rows[3][2] == reply2["sticker"]["id"]
    log_text = log_path.read_text()
    assert "I just lost my job" not in log_text, "the person's text leaked into the log"
    assert reply["text"] not in log_text, "the reply text leaked into the log"


def test_a_conversation_on_the_default_model(default_server, library) -> None:
    """What `make run` serves: the corpus-tuned SmolLM2 answers in its own words, never
    the same sentence twice, with library stickers that fit the mood when it sends one."""
    from training.evaluation.conversation import repeats_sentence, talks_of_human_life
    from training.evaluation.items import EvalItem, Turn

    base, data_dir, _ = default_server
    lines = ["my best friend is moving to another country next month",
             "we've known each other since we were six",
             "she asked me to help her pack this weekend"]
    context: list[Turn] = []
    with chat_client(base, timeout=120) as client:
        for line in lines:
            response = client.post("/api/chat/messages", json={"text": line})
            assert response.status_code == 200, response.text
            reply = response.json()["reply"]
            assert reply["safety"] is None, reply  # an ordinary goodbye, not a crisis
            context.append(Turn("user", line))
            item = EvalItem(item_id="x", system="default", context=list(context),
                            text=reply["text"])
            assert len(reply["text"].split()) >= 3 and not repeats_sentence(item), reply
            assert not talks_of_human_life(reply["text"]), reply
            assert "[sticker" not in reply["text"], reply  # the action never reaches people
            if reply["sticker"] is not None and reply["user_emotion"] in (
                    "sadness", "fear", "anger", "disgust"):
                # Nothing cheerful when the person is down.
                assert library.get(reply["sticker"]["id"]).emotion.value != "happiness", reply
            context.append(Turn("assistant", reply["text"]))
    with sqlite3.connect(data_dir / "stickerbot.db") as db:
        versions = {r[0] for r in db.execute(
            "SELECT model_version FROM messages WHERE role = 'bot'")}
    assert len(versions) == 1 and "-tuned-" in versions.pop()
