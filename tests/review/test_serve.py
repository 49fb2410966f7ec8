"""`stickerbot review add-operator` and `stickerbot serve` with the dashboard at /review
beside the web chat, as real processes. A broker URL (real Redis) keeps the model out of
the serving process, so it starts in seconds."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx

from tests.review.conftest import PASSWORD
from tests.serve_process import REPO, serve


def add_operator(data_dir, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "stickerbot.py"), "review", "add-operator", "olivia",
         "--password-stdin", *args], input=password + "\n", capture_output=True, text=True,
        cwd=REPO, env=dict(os.environ, STICKERBOT_DATA_DIR=str(data_dir)), timeout=120)


def test_serve_mounts_the_dashboard_beside_the_web_chat(tmp_path, review_library_root,
                                                       model_cache, redis_url) -> None:
    data = tmp_path / "data"
    data.mkdir()
    done = add_operator(data)
    assert done.returncode == 0, done.stderr
    assert "operator olivia added" in done.stdout and PASSWORD not in done.stdout + done.stderr
    again = add_operator(data)
    assert again.returncode != 0 and "exists already" in again.stderr
    assert add_operator(data, "--replace", password="short").returncode != 0
    with serve(data, review_library_root, model_cache, CELERY_BROKER_URL=redis_url,
               REDIS_URL=redis_url) as (base, log_path):
        with httpx.Client(base_url=base) as client:
            assert client.get("/").status_code == 200  # the web chat page
            assert client.get("/healthz").json()["status"] == "ok"
            assert client.get("/review/", follow_redirects=False).headers[
                "location"] == "/review/login"
            assert client.get("/review/api/metrics").status_code == 401
            login = client.get("/review/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
            response = client.post("/review/login", data={
                "username": "olivia", "password": PASSWORD, "csrf_token": csrf},
                follow_redirects=True)
            assert response.status_code == 200 and "Conversations" in response.text
            assert client.get("/review/api/metrics").status_code == 200
        assert PASSWORD not in log_path.read_text()


def test_the_served_web_chat_holds_its_limits(tmp_path, review_library_root, model_cache,
                                              redis_url) -> None:
    """Issue 21's probe against a real `stickerbot serve`: a chunked body past the limit,
    a write from another site, a client claiming an address, a forget without identity."""
    data = tmp_path / "data"
    data.mkdir()
    with serve(data, review_library_root, model_cache, CELERY_BROKER_URL=redis_url,
               REDIS_URL=redis_url) as (base, log_path), \
            httpx.Client(base_url=base, timeout=60) as client:
        def chunks():
            yield b'{"text": "hi", "pad": "'
            for _ in range(200):  # 13 MB without a Content-Length
                yield b"x" * 65536
            yield b'"}'

        token = client.post("/api/chat/session").json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        big = client.post("/api/chat/messages", content=chunks(),
                          headers={"content-type": "application/json", **bearer})
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
        assert client.post("/api/chat/forget", json={"user": "victim", "confirm": True}
                           ).status_code == 401
        evil = client.post("/api/chat/forget", json={"confirm": True},
                           headers={"Origin": "http://evil.example", **bearer})
        assert evil.status_code == 403
        mine = client.post("/api/chat/forget", json={"confirm": True}, headers=bearer)
        assert mine.status_code == 200
        # Five names, five claimed addresses: the connection's address is what counts.
        codes = []
        for n in range(6):
            login = client.get("/review/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
            codes.append(client.post("/review/login", data={
                "username": f"guess{n}", "password": "wrong", "csrf_token": csrf},
                headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code)
        assert codes == [401] * 5 + [429]
    assert "STICKERBOT_WEB_SECRET is not set" in log_path.read_text()
