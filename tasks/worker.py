"""`stickerbot worker`: a Celery worker that holds one model (queue gpu), or runs long
jobs (queue cpu, tasks/jobs.py) without loading the reply model.

The model is loaded once per worker process when the process starts (the
worker_process_init signal, which the solo pool sends in the worker itself and the
prefork pool in each child), never in a parent that forks afterwards. The solo pool
(the default: one model per GPU, one task at a time) has no time limits of its own,
so they are enforced here: SIGALRM raises SoftTimeLimitExceeded inside the task, and
a task still running at the hard limit takes its process down (marked failed first)
so that the container restarts it.

Batching (STICKERBOT_BATCH_SIZE > 1, a worker of queue gpu only): the worker prefetches
up to batch_size turns and runs their tasks on the threads pool; each hands its turn to
one `TurnBatcher`, whose model thread answers the ready turns together. A task stops
waiting at the soft limit; a batch still running at the hard limit marks its tasks
failed and takes the process down, as above. Why this and not celery-batches: README,
"Queue and workers".
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_postrun, task_prerun, worker_process_init

from engine.types import Reply, UserTurn
from tasks.app import GPU_QUEUE, QUEUES, celery_app, configure_celery
from tasks.batching import TurnBatcher
from tasks.jobs import use_worker_settings
from tasks.metrics import HealthServer, register_queue_depth
from tasks.respond import use_batcher
from tasks.runtime import get_runtime, init_runtime, load_on_first_use, runtime_loaded
from tasks.settings import TaskSettings

log = logging.getLogger(__name__)

_pool = "solo"
_queues: list[str] = [GPU_QUEUE]
_hard_timer: threading.Timer | None = None


@worker_process_init.connect
def _load_models(**_: Any) -> None:
    if GPU_QUEUE not in _queues:  # a jobs worker: each job loads what it needs
        return
    get_runtime()  # with the settings run_worker gave
    log.info("models loaded in worker process %d", os.getpid())


def _soft_limit(signum: int, frame: object) -> None:
    raise SoftTimeLimitExceeded()


def _hard_limit(*task_ids: str) -> None:
    log.critical("task %s ran past its hard time limit; stopping this worker",
                 ", ".join(task_ids))
    try:
        for task_id in task_ids:
            celery_app.backend.mark_as_failure(task_id, TimeLimitExceeded(task_id))
    finally:
        os._exit(70)


def _answer_batch(turns: list[UserTurn]) -> list[Reply]:
    """A batching worker's model thread: the turns together, under the hard time limit."""
    hard = celery_app.conf.task_time_limit
    timer = None
    if hard:
        timer = threading.Timer(float(hard), _hard_limit, args=[t.task_id for t in turns])
        timer.daemon = True
        timer.start()
    try:
        return get_runtime().handle_batch(turns)
    finally:
        if timer is not None:
            timer.cancel()


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


def run_worker(settings: TaskSettings, queues: list[str], pool: str = "solo",
               concurrency: int = 1, loglevel: str = "INFO") -> None:
    """Consume `queues` until stopped; /healthz and /metrics on settings.health_port."""
    global _pool, _queues
    if settings.uses_embedded_queue:
        raise SystemExit("stickerbot worker needs CELERY_BROKER_URL (e.g. redis://host:6379/1); "
                         "without it replies are made inside `stickerbot serve`")
    batching = settings.batch_size > 1 and queues == [GPU_QUEUE] and pool == "solo"
    if batching:
        pool, concurrency = "threads", settings.batch_size
    _pool, _queues = pool, queues
    load_on_first_use(settings)
    use_worker_settings(settings)
    configure_celery(settings)
    register_queue_depth(settings.celery_broker_url, QUEUES)
    broker = settings.celery_broker_url
    health = HealthServer(settings.health_host, settings.health_port, lambda: {
        "models_loaded": pool == "prefork" or GPU_QUEUE not in queues or runtime_loaded(),
        "broker": _broker_reachable(broker),
    }).start()
    if batching:  # the threads pool sends no worker_process_init: load the models here
        init_runtime(settings)
        use_batcher(TurnBatcher(_answer_batch, settings.batch_size,
                                settings.batch_window_ms / 1000))
        log.info("batching: up to %d turns, window %.0f ms", settings.batch_size,
                 settings.batch_window_ms)
    try:
        celery_app.worker_main([
            "worker", f"--queues={','.join(queues)}", f"--pool={pool}",
            f"--concurrency={concurrency}", f"--loglevel={loglevel}",
            f"--hostname={'-'.join(queues)}-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle",
        ])
    finally:
        health.stop()
