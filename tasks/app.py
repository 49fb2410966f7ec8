"""The Celery app and its configuration.

Two queues: "gpu" for replies (`tasks.respond`, a worker holding the reply model) and
"cpu" for long jobs (evaluation, simulation, training: tasks/jobs.py, a worker that
loads only what each job needs). The embedded default runs replies eagerly in the
calling process and jobs on its threads (no broker), so the same task code serves a
laptop and a fleet of workers; only configuration differs.
"""

from __future__ import annotations

from celery import Celery

from tasks.settings import TaskSettings

RESPOND_TASK = "respond"
JOB_TASK_NAMES = ("jobs.evaluate", "jobs.simulate", "jobs.train")
GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"
QUEUES = (GPU_QUEUE, CPU_QUEUE)

celery_app = Celery("stickerbot", include=["tasks.respond", "tasks.jobs"])


def _forget_connections(broker_url: str) -> None:
    """Celery keeps its connection and producer pools for the broker it first used: a
    process pointed at another broker (a test after another test) must not go on
    publishing to the old one."""
    if celery_app.conf.broker_url == broker_url:
        return
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None


def configure_celery(settings: TaskSettings) -> Celery:
    """Point the app at the broker from settings, or at in-process execution."""
    _forget_connections("memory://" if settings.uses_embedded_queue
                        else settings.celery_broker_url)
    if settings.uses_embedded_queue:
        celery_app.conf.update(
            broker_url="memory://",
            result_backend="cache+memory://",
            task_always_eager=True,
            task_eager_propagates=True,
            task_store_eager_result=False,
        )
    else:
        transport = {
            # A task of a worker that died goes back to the queue after this long: it must
            # outlast the longest task (TaskSettings checks), or a slow reply runs twice.
            "visibility_timeout": settings.visibility_timeout_s,
            # Look for such tasks every 10 s rather than every 100 s.
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 5,
            "socket_timeout": 30,
            "socket_keepalive": True,
            "health_check_interval": 10,
        }
        celery_app.conf.update(
            broker_url=settings.celery_broker_url,
            result_backend=settings.redis_url or settings.celery_broker_url,
            task_always_eager=False,
            broker_transport_options=transport,
            result_backend_transport_options={"visibility_timeout": settings.visibility_timeout_s},
            # A reply finished while Redis restarts is stored once it is back.
            result_backend_always_retry=True,
            result_backend_max_retries=30,
            redis_socket_connect_timeout=5,
            redis_socket_timeout=30,
            broker_connection_retry_on_startup=True,
            broker_connection_max_retries=None,
        )
    celery_app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_routes={RESPOND_TASK: {"queue": GPU_QUEUE},
                     **{name: {"queue": CPU_QUEUE} for name in JOB_TASK_NAMES}},
        task_default_queue=CPU_QUEUE,
        # One model per worker: take one task at a time, acknowledge only when done so a
        # lost worker's task goes back to the queue.
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        result_expires=24 * 3600,
        worker_pool="solo",
        worker_concurrency=1,
        # Our logging setup stays in charge; Celery must not re-route print() or the root.
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return celery_app
