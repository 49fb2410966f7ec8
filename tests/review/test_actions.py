"""Marks, exports, deleting a user's data, evaluation runs and the metrics page, through
the dashboard's routes with a logged-in operator."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from review.actions import mark_message
from storage.models import Conversation, EvaluationScore, Message, ReviewMark, User
from tests.review.conftest import log_in, page_csrf


@pytest.fixture
def client(dashboard):
    log_in(dashboard.client)
    return dashboard.client


def test_flag_good_and_bad_marks_on_a_reply(dashboard, client) -> None:
    sd = dashboard.seeded
    csrf = page_csrf(client)
    response = client.post(f"/review/messages/{sd.alice_bot}/mark",
                           data={"csrf_token": csrf, "kind": "flag", "note": "<i>too</i> chirpy"},
                           follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/conversations/{sd.alice_conv}"
                                                 f"?done=marked#m{sd.alice_bot}")
    for kind in ("good", "bad"):
        client.post(f"/review/messages/{sd.alice_bot}/mark",
                    data={"csrf_token": csrf, "kind": kind})
    with dashboard.db.session() as s:
        marks = [(m.kind, m.note, m.source) for m in s.execute(
            select(ReviewMark).where(ReviewMark.message_id == sd.alice_bot)
            .order_by(ReviewMark.id)).scalars()]
    assert marks == [("flag", "<i>too</i> chirpy", "operator"), ("bad", "", "operator")]
    page = client.get(f"/review/conversations/{sd.alice_conv}").text
    assert "&lt;i&gt;too&lt;/i&gt; chirpy" in page and "<i>too</i>" not in page
    bad = client.post(f"/review/messages/{sd.alice_bot}/mark",
                      data={"csrf_token": csrf, "kind": "wonderful"})
    assert bad.status_code == 400
    user_message = sd.bob_user_msg
    with pytest.raises(ValueError, match="bot"):
        mark_message(dashboard.db, user_message, 1, "flag")
    assert client.post("/review/messages/999999/mark",
                       data={"csrf_token": csrf, "kind": "flag"}).status_code == 404


def test_export_writes_stickerconv_sessions_training_reads(dashboard, client,
                                                           tmp_path) -> None:
    from training.data import read_sessions

    sd = dashboard.seeded
    csrf = page_csrf(client)
    response = client.post("/review/export", data={"csrf_token": csrf,
                                                   "ids": [sd.alice_conv, sd.bob_conv]})
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    sessions = [json.loads(line) for line in response.text.splitlines()]
    path = tmp_path / "export.jsonl"
    path.write_text(response.text)
    assert len(read_sessions(path)) == 2
    alice, bob = sessions
    assert alice["session_id"] == f"web:{sd.alice_conv}" and alice["model_versions"] == ["v1"]
    first = alice["conversation"][0]
    assert set(first) == {"turn", "user_message", "system_message", "user_sticker",
                          "system_sticker"}
    assert first["turn"] == 1 and first["system_message"] == "That is wonderful news!"
    assert first["system_sticker"] == {
        "image": "test/happy-sun.png", "description": "A happy sun.", "emotion": "happiness",
        "recommendation": "Use it to share the feeling.", "origin_anno": "Feeling happiness."}
    assert first["user_sticker"]["image"] == "test/happy-sun.png"
    assert alice["conversation"][1]["system_sticker"] is None
    assert bob["conversation"][0]["user_sticker"]["image"] == str(sd.bob_media)
    assert bob["conversation"][0]["user_sticker"]["emotion"] == "sadness"
    assert bob["review_marks"] == [{"turn": 1, "kind": "flag", "source": "safety",
                                    "note": "crisis: self_harm"}]
    assert client.post("/review/export", data={"csrf_token": csrf}).status_code == 400


def test_deleting_a_user_removes_rows_memory_and_media(dashboard, client, redis_url) -> None:
    from storage.redis_memory import RedisMemory
    from storage.transcript import TranscriptStore

    sd = dashboard.seeded
    cache = RedisMemory.from_url(redis_url, dashboard.db)
    dashboard.app.state.review.transcripts = TranscriptStore(dashboard.db, memory_cache=cache)
    assert cache.recent("telegram", "chat-1001", "1001", 6)  # rebuilt into Redis from SQL
    key = cache.key("telegram", "chat-1001", "1001")
    assert cache.client.exists(key)
    confirm = client.get(f"/review/users/{sd.bob_user_id}/delete")
    assert confirm.status_code == 200 and "Type the user id" in confirm.text
    csrf = page_csrf(client)
    wrong = client.post(f"/review/users/{sd.bob_user_id}/delete",
                        data={"csrf_token": csrf, "confirm": "bob"})
    assert wrong.status_code == 400 and sd.bob_media.exists()
    done = client.post(f"/review/users/{sd.bob_user_id}/delete",
                       data={"csrf_token": csrf, "confirm": "1001"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/review/?done=deleted"
    assert not sd.bob_media.exists()
    assert not cache.client.exists(key)
    with dashboard.db.session() as s:
        assert s.get(User, sd.bob_user_id) is None
        assert s.get(Conversation, sd.bob_conv) is None
        assert s.get(Message, sd.bob_bot) is None
        assert s.execute(select(ReviewMark).where(ReviewMark.message_id == sd.bob_bot)
                         ).first() is None
        assert s.get(User, sd.alice_user_id) is not None
    # A web user who picked a library sticker: the library file is not theirs to delete.
    client.post(f"/review/users/{sd.alice_user_id}/delete",
                data={"csrf_token": csrf, "confirm": "alice"})
    library = dashboard.app.state.review.library
    assert library.png_file("happy-sun").exists()
    with dashboard.db.session() as s:
        assert s.get(User, sd.alice_user_id) is None
        assert s.execute(select(EvaluationScore).where(
            EvaluationScore.message_id == sd.alice_bot)).first() is None
    assert "The user&#39;s data was deleted." in client.get("/review/?done=deleted").text


def test_an_evaluation_run_scores_the_logged_replies(dashboard, client) -> None:
    csrf = page_csrf(client, "/review/evaluations")
    started = client.post("/review/evaluations", data={"csrf_token": csrf, "platform": "web"},
                          follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"].endswith("done=started")
    deadline = time.monotonic() + 120
    while True:
        jobs = client.get("/review/api/evaluations").json()["jobs"]
        assert len(jobs) == 1
        if jobs[0]["state"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, "the evaluation did not finish"
        page = client.get("/review/evaluations").text
        assert 'http-equiv="refresh"' in page and 'class="progress"' in page
        time.sleep(0.5)
    job = jobs[0]
    assert job["state"] == "done", job["error"]
    assert job["summary"] == {"v1": 2}  # alice's two replies, the web platform only
    page = client.get("/review/evaluations").text
    assert f'/review/evaluations/{job["run_id"]}' in page
    run = client.get(f"/review/evaluations/{job['run_id']}")
    assert run.status_code == 200 and "multimodal.freq" in run.text
    with dashboard.db.session() as s:
        freq = s.execute(select(EvaluationScore.value).where(
            EvaluationScore.run_id == job["run_id"],
            EvaluationScore.metric == "multimodal.freq")).scalar_one()
    assert freq == pytest.approx(0.5)  # one of the two replies has a sticker


def test_metrics_page_shows_charts_and_numbers(dashboard, client) -> None:
    data = client.get("/review/api/metrics").json()
    totals = {platform: sum(days.values()) for platform, days in data["volume"].items()}
    assert totals == {"discord": 1, "telegram": 1, "web": 2}
    assert all(len(day) == 10 for days in data["volume"].values() for day in days)  # ISO days
    assert data["latency"]["n"] == 4
    assert data["latency"]["p50"] == pytest.approx(1050.0)  # 800, 900, 1200, 1500
    assert data["latency"]["p99"] == pytest.approx(1491.0)
    assert data["sticker_frequency"]["share"] == pytest.approx(0.5)
    assert data["sticker_frequency"]["top"] == [{"sticker_id": "happy-sun", "count": 1},
                                                {"sticker_id": "sad-rain", "count": 1}]
    assert data["emotions"]["user"]["happiness"] == 2 and data["emotions"]["user"]["anger"] == 1
    assert data["emotions"]["bot"]["sadness"] == 2  # carol's anger was answered with comfort
    assert data["judge"]["runs"]["judge.emp_txt"]["v1"][0]["value"] == pytest.approx(4.2)
    assert list(data["judge"]["daily"]["judge.con"].values()) == [pytest.approx(4.6)]
    page = client.get("/review/metrics").text
    assert page.count("<svg") == 6 and "no data" not in page
    assert "<polyline" in page and "<rect" in page
