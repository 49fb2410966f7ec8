"""The production topology on loopback, for tests and benchmarks: a dedicated redis-server
and PostgreSQL (which tests stop and restart; SQLite when none is given), and
`stickerbot worker` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from settings import Settings
from tests.harness.services import PgDatabases, Service, free_port

REPO = Path(__file__).resolve().parents[2]
WORKER_START_S = 240


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    health_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # Celery's warm shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Cluster:
    redis: Service
    postgres: Service | None  # None: SQLite in data_dir
    data_dir: Path
    model_cache: Path
    database_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    @classmethod
    def create(cls, redis: Service, postgres: Service | None, data_dir: Path, pack_root: Path,
               model_cache: Path, **extra_env: str) -> Cluster:
        (data_dir / "stickers").symlink_to(pack_root)
        if postgres is None:
            database_url = f"sqlite:///{(data_dir / 'stickerbot.db').resolve()}"
        else:
            _, database_url = PgDatabases(postgres.url).create(prefix="sb_cluster")
        return cls(redis, postgres, data_dir, model_cache, database_url, dict(extra_env))

    @property
    def env(self) -> dict[str, str]:
        base = self.redis.url.rsplit("/", 1)[0]
        return {
            "STICKERBOT_DATA_DIR": str(self.data_dir),
            "STICKERBOT_MODEL_CACHE": str(self.model_cache),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"{base}/0",
            "CELERY_BROKER_URL": f"{base}/1",
            "STICKERBOT_OCR": "false",
            # The queue's behaviour is under test; PEGS has tests/test_pegs_end_to_end.py.
            "STICKERBOT_REPLY_MODEL": "retrieval",
            **self.extra_env,
        }

    def settings(self) -> Settings:
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            return Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def start_worker(self, name: str, queues: str = "gpu", **env: str) -> Worker:
        port = free_port()
        log_path = self.data_dir / f"worker-{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, str(REPO / "stickerbot.py"), "worker", "--queues", queues],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env, "STICKERBOT_HEALTH_PORT": str(port), **env})
        worker = Worker(process, f"http://127.0.0.1:{port}/healthz", log_path)
        self.workers.append(worker)
        self._wait_healthy(worker)
        return worker

    def _wait_healthy(self, worker: Worker) -> None:
        deadline = time.monotonic() + WORKER_START_S
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker exited ({worker.process.returncode}):\n"
                                   f"{worker.log()[-3000:]}")
            try:
                if httpx.get(worker.health_url, timeout=2).status_code == 200:
                    # Healthy once the model is loaded; consuming starts right after.
                    if "ready." in worker.log():
                        return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        worker.process.kill()
        raise RuntimeError(f"worker not ready in {WORKER_START_S} s:\n{worker.log()[-3000:]}")

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()
        if self.postgres is not None and self.postgres.process.poll() is None:
            PgDatabases(self.postgres.url).drop(self.database_url.rsplit("/", 1)[1])
