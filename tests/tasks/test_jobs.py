"""Long jobs (tasks/jobs.py): routed to queue cpu, their state kept in the database from
queued to done or failed. The dashboard's evaluation on a real cpu worker is in
tests/review/test_evaluation_jobs.py; here a training job runs on the embedded profile."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from engine.stickers import StickerLibrary
from settings import Settings
from storage.db import Database
from storage.models import Job
from tasks.app import CPU_QUEUE, GPU_QUEUE, celery_app, configure_celery
from tasks.jobs import JOB_TASKS, get_job, list_jobs, submit
from tests.training.test_data import session


def wait(db: Database, job_id: str, seconds: float = 300) -> Job:
    deadline = time.monotonic() + seconds
    while True:
        job = get_job(db, job_id)
        assert job is not None
        if job.state in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job.state}: {job.progress}"
        time.sleep(0.2)


def test_jobs_go_to_the_cpu_queue_and_replies_to_the_gpu_one() -> None:
    configure_celery(Settings(celery_broker_url="redis://127.0.0.1:1/1"))
    try:
        router = celery_app.amqp.router
        for task in JOB_TASKS.values():
            assert router.route({}, task.name)["queue"].name == CPU_QUEUE
            assert task.acks_late is False  # a training run outlasts the visibility timeout
        assert router.route({}, "respond")["queue"].name == GPU_QUEUE
    finally:
        configure_celery(Settings(celery_broker_url=""))


def test_a_training_job_runs_in_process_on_the_embedded_profile(
        sqlite_database: Database, pack_root: Path, tmp_path: Path) -> None:
    stickers = tmp_path / "stickers"
    shutil.copytree(pack_root, stickers)
    library = StickerLibrary.load(stickers)
    sessions = tmp_path / "sessions.jsonl"
    sessions.write_text("".join(json.dumps(session(library, *library.ids()[i:i + 2])) + "\n"
                                for i in range(4)))
    settings = Settings(data_dir=tmp_path, database_url=str(sqlite_database.url))
    params = {"preset": "tiny", "stages": ["emotion"], "sessions": [str(sessions)],
              "stickers_dir": str(stickers), "out": str(tmp_path / "checkpoints"),
              "version": "j1", "max_steps": 1, "epochs": 1}
    job = wait(sqlite_database, submit(sqlite_database, settings, "train", params))
    assert job.state == "done", job.error
    assert (job.progress, job.result["version"], job.result["finished"]) == (
        "finished", "j1", True)
    assert (tmp_path / "checkpoints" / "j1" / "training_report.json").is_file()

    failing = wait(sqlite_database, submit(sqlite_database, settings, "train",
                                           {**params, "preset": "huge"}))
    assert failing.state == "failed" and "unknown preset 'huge'" in failing.error
    assert [j.id for j in list_jobs(sqlite_database, "train")] == [failing.id, job.id]


def test_an_unknown_kind_is_refused(sqlite_database: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=str(sqlite_database.url))
    with pytest.raises(ValueError, match="unknown job kind"):
        submit(sqlite_database, settings, "mine-bitcoin", {})
    assert list_jobs(sqlite_database) == []


def test_a_simulation_job_writes_its_sessions(sqlite_database: Database, pack_root: Path,
                                              tmp_path: Path) -> None:
    from tests.factories import save_tiny_llm

    (tmp_path / "stickers").symlink_to(pack_root)
    settings = Settings(data_dir=tmp_path, database_url=str(sqlite_database.url),
                        llm_path=save_tiny_llm(tmp_path / "tiny"), max_new_tokens=8)
    out = tmp_path / "simulated" / "sessions.jsonl"
    params = {"out": str(out), "sessions": 2, "max_turns": 2, "shards": 10, "top_k": 5,
              "batch_size": 2}
    job = wait(sqlite_database, submit(sqlite_database, settings, "simulate", params))
    assert job.state == "done", job.error
    assert (job.result["out"], job.result["written"]) == (str(out), 2)
    assert len(out.read_text().splitlines()) == 2
