"""Evaluation runs started from the dashboard: jobs on queue "cpu" (tasks/jobs.py).

A run scores the selected logged replies with training.evaluation (the same code as
`stickerbot evaluate --transcripts`) and stores its scores, per system and per reply, in
evaluation_scores. A `stickerbot worker --queues cpu` runs it (on the embedded profile,
a thread of this process); its state and progress are a row of `jobs`, so the page
shows it after a restart of the dashboard. Earlier runs (also from the command line)
are listed from evaluation_scores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from review.settings import ReviewSettings
from storage.db import Database
from storage.models import EvaluationScore, Job
from tasks import jobs as job_queue
from tasks.jobs import Evaluator

KIND = "evaluate"


class EvaluationRuns:
    """Starts runs and reads their state; one run at a time (they share the CPU with the
    replies)."""

    def __init__(self, db: Database, settings: ReviewSettings,
                 evaluator: Evaluator | None = None, *, bertscore: bool = True) -> None:
        self.db, self.settings = db, settings
        self.evaluator = evaluator  # in-process runs only; a worker uses the real one
        self.bertscore = bertscore
        if settings.uses_embedded_queue:  # runs of this process died with it
            job_queue.fail_interrupted(db)

    def jobs(self) -> list[Job]:
        """The runs started from the dashboard, newest first."""
        return job_queue.list_jobs(self.db, KIND)

    def running(self) -> Job | None:
        return job_queue.unfinished_job(self.db, KIND)

    def start(self, *, since: datetime | None = None, until: datetime | None = None,
              platform: str | None = None, model_version: str | None = None,
              judge: bool = False, judge_samples: int = 5) -> str:
        """Queue a run; ValueError while another one is queued or running."""
        if self.running() is not None:
            raise ValueError("An evaluation is running already; wait for it to finish.")
        params = {"since": since.isoformat() if since else None,
                  "until": until.isoformat() if until else None,
                  "platform": platform or None, "model_version": model_version or None,
                  "judge": judge, "judge_samples": judge_samples, "bertscore": self.bertscore}
        return job_queue.submit(self.db, self.settings, KIND, params, evaluator=self.evaluator)

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
