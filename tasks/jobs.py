"""Long jobs on queue "cpu": evaluation, simulation and training.

Each is a Celery task that `stickerbot worker --queues cpu` takes, around a job function
that loads only what its job needs (the metrics, the simulator's LLM, the backbones being
trained), never the reply model. A job's state is a row of `jobs` (storage.models.Job):
queued when submitted, running with a line of progress, then done with its result or
failed with the error; the dashboard reads it there, so a restart of the dashboard loses
nothing.

On the embedded profile (no broker) `submit` runs the same job function on a thread of
the calling process. A job that process left unfinished when it stopped is marked
failed when it starts again (`fail_interrupted`).

Jobs are acknowledged when a worker takes them, not when they end: a training run
outlasts the broker's visibility timeout, after which a late-acknowledged task would be
delivered again and run twice. A worker lost mid-job leaves its row "running".
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from storage.db import Database
from storage.models import Job, utcnow
from tasks.app import celery_app
from tasks.settings import TaskSettings

log = logging.getLogger(__name__)

KINDS = ("evaluate", "simulate", "train")
UNFINISHED = ("queued", "running")
# The reply tasks' time limits are for replies; a training job runs for hours.
JOB_TIME_LIMIT_S = 7 * 24 * 3600

Progress = Callable[[str], None]
Evaluator = Callable[..., tuple[str, dict[str, Any]]]


# --- the jobs table --------------------------------------------------------------------------
def create_job(db: Database, kind: str, params: dict[str, Any]) -> str:
    """A queued job row; returns its id (also its Celery task id)."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; choose one of {KINDS}")
    job_id = uuid.uuid4().hex[:12]
    with db.session() as s:
        s.add(Job(id=job_id, kind=kind, params=params, state="queued",
                  progress="waiting for a worker"))
    return job_id


def update_job(db: Database, job_id: str, **values: Any) -> None:
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is not None:
            for name, value in values.items():
                setattr(job, name, value)


def get_job(db: Database, job_id: str) -> Job | None:
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is not None:
            s.expunge(job)
        return job


def list_jobs(db: Database, kind: str | None = None, limit: int = 50) -> list[Job]:
    """Jobs newest first."""
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if kind is not None:
        query = query.where(Job.kind == kind)
    with db.session() as s:
        jobs = list(s.execute(query).scalars())
        s.expunge_all()
        return jobs


def unfinished_job(db: Database, kind: str) -> Job | None:
    with db.session() as s:
        job = s.execute(select(Job).where(Job.kind == kind, Job.state.in_(UNFINISHED))
                        .limit(1)).scalar_one_or_none()
        if job is not None:
            s.expunge(job)
        return job


def fail_interrupted(db: Database) -> int:
    """Mark failed the jobs a stopped process left unfinished (embedded profile only)."""
    with db.session() as s:
        jobs = list(s.execute(select(Job).where(Job.state.in_(UNFINISHED))).scalars())
        for job in jobs:
            job.state, job.finished_at = "failed", utcnow()
            job.error = "interrupted: the process running it stopped"
        return len(jobs)


# --- running one ---------------------------------------------------------------------------
def run_job(db: Database, settings: TaskSettings, job_id: str, *,
            evaluator: Evaluator | None = None) -> None:
    """Run a queued job, keeping its state in the database; a job already taken (or gone)
    is left alone."""
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.state != "queued":
            log.warning("job %s is %s; not running it", job_id, job.state if job else "gone")
            return
        job.state, job.started_at, job.progress = "running", utcnow(), "started"
        kind, params = job.kind, dict(job.params)

    def progress(text: str) -> None:
        update_job(db, job_id, progress=text[:200])

    try:
        if kind == "evaluate":
            result = evaluate_job(db, settings, job_id, params, progress, evaluator)
        elif kind == "simulate":
            result = simulate_job(settings, params, progress)
        else:
            result = train_job(params, progress)
    except LookupError as error:  # an evaluation whose selection matched nothing
        update_job(db, job_id, state="failed", error=str(error), finished_at=utcnow())
    except Exception as error:  # shown on the page; the traceback goes to the log
        log.exception("%s job %s failed", kind, job_id)
        update_job(db, job_id, state="failed", error=f"{type(error).__name__}: {error}"[:500],
                   finished_at=utcnow())
    else:
        update_job(db, job_id, state="done", result=result, progress="finished",
                   finished_at=utcnow())


def evaluate_job(db: Database, settings: TaskSettings, job_id: str, params: dict[str, Any],
                 progress: Progress, evaluator: Evaluator | None = None) -> dict[str, Any]:
    """Score the selected logged replies (as `stickerbot evaluate --transcripts`)."""
    if evaluator is None:
        from training.evaluation.run import evaluate_transcripts as evaluator
    judge_backend = None
    if params.get("judge"):
        from engine.backends.factory import build_backend

        progress("loading the judge LLM")
        judge_backend = build_backend(settings)
    progress("scoring the selected replies" + (" with the LLM judge" if judge_backend else ""))
    run_id, results = evaluator(
        db, settings, since=_time(params.get("since")), until=_time(params.get("until")),
        platform=params.get("platform"), model_version=params.get("model_version"),
        judge_backend=judge_backend, judge_samples=params.get("judge_samples", 5),
        bertscore=params.get("bertscore", True),
        out=Path(settings.data_dir) / "eval" / f"review-{job_id}")
    return {"run_id": run_id,
            "summary": {system: scores.get("n")
                        for system, scores in (results.get("systems") or {}).items()}}


def simulate_job(settings: TaskSettings, params: dict[str, Any],
                 progress: Progress) -> dict[str, Any]:
    """Agent4SC sessions (as `stickerbot simulate`); params are SimulateOptions fields."""
    from training.simulator.main import SimulateOptions, simulate

    options = SimulateOptions(**_with_paths(SimulateOptions, params), progress=False)
    progress(f"simulating {options.sessions} sessions into {options.out}")
    report = simulate(settings, options)
    return {"out": str(options.out), **{k: v for k, v in report.items()
                                         if isinstance(v, str | int | float)}}


def train_job(params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """PEGS stages (as `stickerbot train`); params are TrainOptions fields."""
    from training.pipeline import TrainOptions, train

    options = TrainOptions(**_with_paths(TrainOptions, params))
    progress(f"training {', '.join(options.stages)} into {options.out / options.version}")
    report = train(options, progress=False)
    # A run stopped by stop_after reports where it stopped; a finished one its checkpoint.
    return {"finished": report.get("finished", True),
            **{key: report[key] for key in ("stage", "step", "version", "seconds",
                                            "retrieval_after") if key in report}}


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _with_paths(options_class: type, params: dict[str, Any]) -> dict[str, Any]:
    """JSON params back into an options dataclass's Path (and list of Path) fields."""
    out = dict(params)
    for f in fields(options_class):
        kind = str(f.type)
        if f.name in out and out[f.name] is not None and "Path" in kind:
            value = out[f.name]
            out[f.name] = [Path(v) for v in value] if isinstance(value, list) else Path(value)
    return out


# --- the Celery tasks and the submitter ------------------------------------------------------
_worker_settings: TaskSettings | None = None
_worker_state: tuple[TaskSettings, Database] | None = None


def use_worker_settings(settings: TaskSettings) -> None:
    """The settings the jobs of this worker process run with (`run_worker` passes them)."""
    global _worker_settings
    _worker_settings = settings


def _worker_context() -> tuple[TaskSettings, Database]:
    """The settings and database of this worker process, opened on its first job."""
    global _worker_state
    if _worker_state is None:
        if _worker_settings is None:
            raise RuntimeError("jobs run in `stickerbot worker --queues cpu`, which passes "
                               "its settings (use_worker_settings)")
        settings = _worker_settings
        _worker_state = settings, Database(settings.resolved_database_url)
    return _worker_state


def _task(kind: str) -> Any:
    @celery_app.task(name=f"jobs.{kind}", acks_late=False, soft_time_limit=JOB_TIME_LIMIT_S,
                     time_limit=JOB_TIME_LIMIT_S + 60)
    def job_task(job_id: str) -> str:
        settings, db = _worker_context()
        run_job(db, settings, job_id)
        return job_id

    return job_task


JOB_TASKS = {kind: _task(kind) for kind in KINDS}


def submit(db: Database, settings: TaskSettings, kind: str, params: dict[str, Any], *,
           evaluator: Evaluator | None = None) -> str:
    """Queue a job: to the cpu workers with a broker, else on a thread of this process."""
    job_id = create_job(db, kind, params)
    if settings.uses_embedded_queue:
        threading.Thread(target=run_job, args=(db, settings, job_id),
                         kwargs={"evaluator": evaluator}, name=f"{kind}-{job_id}",
                         daemon=True).start()
    else:
        from tasks.app import CPU_QUEUE, configure_celery

        configure_celery(settings)
        JOB_TASKS[kind].apply_async(args=[job_id], task_id=job_id, queue=CPU_QUEUE)
    return job_id
