"""`stickerbot worker`: a Celery worker that holds one model.

The model is loaded once per worker process when the process starts (the
worker_process_init signal, which the solo pool sends in the worker itself and the
prefork pool in each child), never in a parent that forks afterwards. The solo pool
(the default: one model per GPU, one task at a time) has no time limits of its own,
so they are enforced here: SIGALRM raises SoftTimeLimitExceeded inside the task, and
a task still running at the hard limit takes its process down (marked failed first)
so that the container restarts it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_postrun, task_prerun, worker_process_init

from engine.settings import Settings
from tasks.app import QUEUES, celery_app, configure_celery
from tasks.metrics import HealthServer, register_queue_depth
from tasks.runtime import init_runtime, runtime_loaded

log = logging.getLogger(__name__)

_settings: Settings | None = None
_pool = "solo"
_hard_timer: threading.Timer | None = None


@worker_process_init.connect
def _load_models(**_: Any) -> None:
    init_runtime(_settings or Settings())
    log.info("models loaded in worker process %d", os.getpid())


def _soft_limit(signum: int, frame: object) -> None:
    raise SoftTimeLimitExceeded()


def _hard_limit(task_id: str) -> None:
    log.critical("task %s ran past its hard time limit; stopping this worker", task_id)
    try:
        celery_app.backend.mark_as_failure(task_id, TimeLimitExceeded(task_id))
    finally:
        os._exit(70)


@task_prerun.connect
def _start_limits(task_id: str, task: Any, **_: Any) -> None:
    global _hard_timer
    if _pool != "solo" or threading.current_thread() is not threading.main_thread():
        return  # prefork enforces limits itself; signals only reach the main thread
    soft = task.soft_time_limit or celery_app.conf.task_soft_time_limit
    hard = task.time_limit or celery_app.conf.task_time_limit
    if soft:
        signal.signal(signal.SIGALRM, _soft_limit)
        signal.setitimer(signal.ITIMER_REAL, float(soft))
    if hard:
        _hard_timer = threading.Timer(float(hard), _hard_limit, args=(task_id,))
        _hard_timer.daemon = True
        _hard_timer.start()


@task_postrun.connect
def _stop_limits(**_: Any) -> None:
    global _hard_timer
    if _pool != "solo" or threading.current_thread() is not threading.main_thread():
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    if _hard_timer is not None:
        _hard_timer.cancel()
        _hard_timer = None


def _broker_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def run_worker(settings: Settings, queues: list[str], pool: str = "solo",
               concurrency: int = 1, loglevel: str = "INFO") -> None:
    """Consume `queues` until stopped; /healthz and /metrics on settings.health_port."""
    global _settings, _pool
    if settings.uses_embedded_queue:
        raise SystemExit("stickerbot worker needs CELERY_BROKER_URL (e.g. redis://host:6379/1); "
                         "without it replies are made inside `stickerbot serve`")
    _settings, _pool = settings, pool
    configure_celery(settings)
    register_queue_depth(settings.celery_broker_url, QUEUES)
    broker = settings.celery_broker_url
    health = HealthServer(settings.health_host, settings.health_port, lambda: {
        "models_loaded": pool != "solo" or runtime_loaded(),
        "broker": _broker_reachable(broker),
    }).start()
    try:
        celery_app.worker_main([
            "worker", f"--queues={','.join(queues)}", f"--pool={pool}",
            f"--concurrency={concurrency}", f"--loglevel={loglevel}",
            f"--hostname={'-'.join(queues)}-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle",
        ])
    finally:
        health.stop()
