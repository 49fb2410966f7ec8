"""The Celery app and its configuration.

The embedded default runs tasks eagerly in the calling process (no broker), so the
same task code serves a laptop and a fleet of GPU workers; only configuration differs.
"""

from __future__ import annotations

from celery import Celery

from engine.settings import Settings

RESPOND_TASK = "respond"
GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"

celery_app = Celery("stickerbot", include=["tasks.respond"])


def configure_celery(settings: Settings) -> Celery:
    """Point the app at the broker from settings, or at in-process execution."""
    if settings.uses_embedded_queue:
        celery_app.conf.update(
            broker_url="memory://",
            result_backend="cache+memory://",
            task_always_eager=True,
            task_eager_propagates=True,
            task_store_eager_result=False,
        )
    else:
        celery_app.conf.update(
            broker_url=settings.celery_broker_url,
            result_backend=settings.redis_url or settings.celery_broker_url,
            task_always_eager=False,
        )
    celery_app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_routes={RESPOND_TASK: {"queue": GPU_QUEUE}},
        task_default_queue=CPU_QUEUE,
        # One model per worker: take one task at a time, acknowledge only when done so a
        # lost worker's task goes back to the queue.
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
    )
    return celery_app
