"""Evaluation runs started from the dashboard, each in a background thread of this process.

A run scores the selected logged replies with training.evaluation (the same code as
`stickerbot evaluate --transcripts`) and stores its scores, per system and per reply, in
evaluation_scores. While it runs, its state lives here (running, done, failed); once
done its scores are in the database, so earlier runs (also from the command line) are
listed from there after a restart.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine.settings import Settings
from storage.db import Database
from storage.models import EvaluationScore, utcnow

log = logging.getLogger(__name__)

Evaluator = Callable[..., tuple[str, dict[str, Any]]]


def default_evaluator() -> Evaluator:
    from training.evaluation.run import evaluate_transcripts

    return evaluate_transcripts


@dataclass
class Job:
    id: str
    params: dict[str, Any]
    state: str = "running"  # running | done | failed
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    run_id: str | None = None
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


class EvaluationRuns:
    """Starts runs and remembers their state; one run at a time (they share the CPU
    with the replies)."""

    def __init__(self, db: Database, settings: Settings,
                 evaluator: Evaluator | None = None, *, bertscore: bool = True) -> None:
        self.db, self.settings = db, settings
        self.evaluator = evaluator
        self.bertscore = bertscore
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def running(self) -> Job | None:
        with self._lock:
            return next((j for j in self.jobs.values() if j.state == "running"), None)

    def start(self, *, since: datetime | None = None, until: datetime | None = None,
              platform: str | None = None, model_version: str | None = None,
              judge: bool = False, judge_samples: int = 5) -> Job:
        """Start a run in the background; ValueError while another one runs."""
        params = {"since": since, "until": until, "platform": platform or None,
                  "model_version": model_version or None, "judge": judge,
                  "judge_samples": judge_samples}
        with self._lock:
            if any(j.state == "running" for j in self.jobs.values()):
                raise ValueError("An evaluation is running already; wait for it to finish.")
            job = Job(id=uuid.uuid4().hex[:12], params=params)
            self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"evaluate-{job.id}",
                         daemon=True).start()
        return job

    def _run(self, job: Job) -> None:
        p = job.params
        try:
            evaluate = self.evaluator or default_evaluator()
            judge_backend = None
            if p["judge"]:
                from engine.backends.factory import build_backend

                judge_backend = build_backend(self.settings)
            out = Path(self.settings.data_dir) / "eval" / f"review-{job.id}"
            run_id, results = evaluate(
                self.db, self.settings, since=p["since"], until=p["until"],
                platform=p["platform"], model_version=p["model_version"],
                judge_backend=judge_backend, judge_samples=p["judge_samples"],
                bertscore=self.bertscore, out=out)
            job.run_id = run_id
            job.summary = {system: scores.get("n") for system, scores in
                           (results.get("systems") or {}).items()}
            job.state = "done"
        except LookupError as error:  # nothing matched the selection
            job.error, job.state = str(error), "failed"
        except Exception as error:  # shown on the page; the traceback goes to the log
            log.exception("evaluation run %s failed", job.id)
            job.error = f"{type(error).__name__}: {error}"[:500]
            job.state = "failed"
        finally:
            job.finished_at = utcnow()

    def stored_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Runs whose scores are in the database, newest first."""
        with self.db.session() as s:
            rows = s.execute(
                select(EvaluationScore.run_id, EvaluationScore.source,
                       func.min(EvaluationScore.created_at), func.count(EvaluationScore.id))
                .group_by(EvaluationScore.run_id, EvaluationScore.source)
                .order_by(func.min(EvaluationScore.created_at).desc()).limit(limit)).all()
        return [{"run_id": r, "source": src, "at": at, "scores": n} for r, src, at, n in rows]

    def scores(self, run_id: str) -> list[EvaluationScore]:
        """The run's per-system scores (per-reply ones are shown with their replies)."""
        with self.db.session() as s:
            rows = s.execute(select(EvaluationScore).where(
                EvaluationScore.run_id == run_id, EvaluationScore.message_id.is_(None))
                .order_by(EvaluationScore.system, EvaluationScore.metric)).scalars().all()
            s.expunge_all()
            return list(rows)

    def reply_scores(self, run_id: str) -> int:
        with self.db.session() as s:
            return s.execute(select(func.count(EvaluationScore.id)).where(
                EvaluationScore.run_id == run_id,
                EvaluationScore.message_id.is_not(None))).scalar_one()
