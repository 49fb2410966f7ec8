"""Settings of the queue and of each process: Celery, time limits, batching, and the
HTTP and health endpoints.

A group of the layered settings (see engine/settings.py): tasks run the engine (and the
cpu jobs its simulator and judge backend) and read and write storage, so it extends those
groups; the top-level `settings.Settings` composes it.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from engine.settings import BackendSettings, env_names
from storage.settings import StorageSettings


class TaskSettings(BackendSettings, StorageSettings):
    # Empty: the in-process queue of the embedded default.
    celery_broker_url: str = Field(default="", validation_alias=env_names("CELERY_BROKER_URL"))

    # A task is stopped softly, then killed, past its limits; the broker hands an
    # unacknowledged task to another worker only after the visibility timeout, which must
    # outlast the longest task.
    task_soft_time_limit_s: float = 240.0
    task_time_limit_s: float = 300.0
    visibility_timeout_s: float = 3600.0
    # How long an adapter waits for a reply before the resend loop takes over.
    reply_timeout_s: float = 600.0
    # A reply that fails on an unavailable database is retried this often, with backoff.
    task_max_retries: int = 20

    # --- batching (issue 19) ---------------------------------------------------------
    # Turns of different chats that are ready together are answered in one batched
    # generation (embedded server and each `stickerbot worker --queues gpu`): at most
    # batch_size turns; once the model is free, a batch waits at most batch_window_ms for
    # the chats of the last one to come back (tasks/batching.py). batch_size 1 answers one
    # turn at a time (the worker then keeps its solo pool).
    batch_size: int = Field(default=8, ge=1)
    batch_window_ms: float = Field(default=100.0, ge=0.0)

    # The web server of `serve` and `review` (web chat and dashboard).
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # /healthz and /metrics of processes that serve no web page (worker, telegram, discord).
    health_host: str = "127.0.0.1"
    health_port: int = 9100

    @model_validator(mode="after")
    def _visibility_outlasts_tasks(self) -> TaskSettings:
        if self.visibility_timeout_s <= self.task_time_limit_s:
            raise ValueError("visibility_timeout_s must be longer than task_time_limit_s, or a "
                             "slow task would be handed to a second worker while it runs")
        if self.task_soft_time_limit_s >= self.task_time_limit_s:
            raise ValueError("task_soft_time_limit_s must be shorter than task_time_limit_s")
        return self

    @property
    def uses_embedded_queue(self) -> bool:
        return not self.celery_broker_url
