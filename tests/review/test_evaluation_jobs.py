"""The dashboard's "evaluate" as a job on queue cpu: a real `stickerbot worker --queues cpu`
runs it on a real redis-server, its state lives in the database, and neither a restart of
the dashboard nor a worker that starts later loses it. On the embedded profile the same
job runs in the dashboard's process, and one its process left unfinished says so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI
from starlette.testclient import TestClient

from review import auth
from review.app import create_review_app
from settings import Settings
from storage.db import Database
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from tasks.jobs import create_job, get_job
from tests.harness.services import ServiceError, start_redis
from tests.review.conftest import PASSWORD, log_in, page_csrf, seed
from tests.tasks.cluster import Cluster

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def redis_service():
    try:
        service = start_redis()
    except ServiceError as error:
        pytest.fail(f"test services unavailable: {error}", pytrace=False)
    yield service
    service.stop()


@pytest.fixture
def cluster(redis_service, tmp_path, review_library_root, model_cache) -> Iterator[Cluster]:
    redis.Redis.from_url(redis_service.url).flushall()
    cluster = Cluster.create(redis_service, None, tmp_path, review_library_root, model_cache)
    yield cluster
    cluster.stop()


def dashboard(settings: Settings, db: Database, library) -> TestClient:
    """A fresh dashboard process, as `stickerbot review` starts one."""
    review = create_review_app(settings, library, db=db, transcripts=TranscriptStore(db),
                               media_store=MediaStore(settings.media_dir), bertscore=False)
    parent = FastAPI()
    parent.mount("/review", review)
    return TestClient(parent)


def wait_finished(client: TestClient, seconds: float = 240) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        jobs = client.get("/review/api/evaluations").json()["jobs"]
        if jobs and jobs[0]["state"] not in ("queued", "running"):
            return jobs[0]
        assert time.monotonic() < deadline, f"the evaluation did not finish: {jobs}"
        time.sleep(0.5)


@pytest.mark.services  # its own redis-server, as tests/tasks/test_worker.py starts one
def test_evaluate_runs_on_the_cpu_worker_and_survives_a_dashboard_restart(
        cluster: Cluster, review_library) -> None:
    settings = cluster.settings()
    assert not settings.uses_embedded_queue
    db = Database(cluster.database_url)
    db.migrate()
    seed(db, review_library, MediaStore(settings.media_dir))
    auth.add_operator(db, "olivia", PASSWORD)

    with dashboard(settings, db, review_library) as client:  # no worker yet: it waits
        log_in(client)
        csrf = page_csrf(client, "/review/evaluations")
        started = client.post("/review/evaluations", data={"csrf_token": csrf,
                                                          "platform": "web"},
                              follow_redirects=False)
        assert started.status_code == 303
        [job] = client.get("/review/api/evaluations").json()["jobs"]
        assert (job["state"], job["progress"]) == ("queued", "waiting for a worker")
        page = client.get("/review/evaluations").text
        assert "waiting for a worker" in page and 'http-equiv="refresh"' in page
        assert "disabled" in page  # one run at a time

    worker = cluster.start_worker("jobs", queues="cpu")
    health = httpx.get(worker.health_url, timeout=5).json()
    assert health["ok"] is True
    with dashboard(settings, db, review_library) as client:  # the dashboard restarted
        log_in(client)
        finished = wait_finished(client)
        assert finished["id"] == job["id"]
        assert finished["state"] == "done", finished["error"]
        assert finished["summary"] == {"v1": 2}  # alice's two replies, the web only
        page = client.get("/review/evaluations").text
        assert f'/review/evaluations/{finished["run_id"]}' in page and "finished" in page
        assert "multimodal.freq" in client.get(
            f"/review/evaluations/{finished['run_id']}").text
    log = worker.log()
    assert f"jobs.evaluate[{job['id']}]" in log  # the cpu worker ran it
    assert "models loaded" not in log  # and never loaded the reply model
    db.dispose()


def test_embedded_dashboard_marks_a_run_its_process_left_unfinished(
        sqlite_database: Database, review_library, review_library_root: Path,
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "stickers").symlink_to(review_library_root, target_is_directory=True)
    settings = Settings(data_dir=data, database_url=str(sqlite_database.url))
    assert settings.uses_embedded_queue
    seed(sqlite_database, review_library, MediaStore(settings.media_dir))
    auth.add_operator(sqlite_database, "olivia", PASSWORD)
    orphan = create_job(sqlite_database, "evaluate", {"platform": "web"})  # its process died

    with dashboard(settings, sqlite_database, review_library) as client:
        log_in(client)
        assert get_job(sqlite_database, orphan).state == "failed"
        assert "interrupted" in client.get("/review/evaluations").text
        csrf = page_csrf(client, "/review/evaluations")
        client.post("/review/evaluations", data={"csrf_token": csrf, "platform": "web"})
        finished = wait_finished(client)
        assert finished["state"] == "done", finished["error"]
        assert finished["summary"] == {"v1": 2}
    with dashboard(settings, sqlite_database, review_library) as client:
        log_in(client)  # a restart keeps the finished run on the page
        assert f'/review/evaluations/{finished["run_id"]}' in client.get(
            "/review/evaluations").text
