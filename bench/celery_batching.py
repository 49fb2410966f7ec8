"""Which batching design for the Celery worker: measured side by side.

    .venv/bin/python bench/celery_batching.py [--chats 8] [--messages 4]
        [--celery-batches DIR]   # where celery_batches is importable from (not a dependency)

Starts a throwaway redis-server, then for each design one worker on the default models
and `--chats` chats at once through the adapters' QueueSubmitter (each chat waits for
its reply before its next message):

- "threads": `stickerbot worker --queues gpu` as shipped: it prefetches batch_size
  tasks, runs them on the threads pool, and each hands its turn to one TurnBatcher;
- "celery-batches": the celery-batches package (0.11) on the solo pool: a `Batches` task
  (flush_every = batch_size, flush_interval = the window) gets the buffered requests,
  answers them with Runtime.handle_batch and stores each result itself;
- "solo": no batching (STICKERBOT_BATCH_SIZE=1), the baseline.

Prints throughput and latency p50/p95 per design, with the machine; JSON to bench/results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.latency import MESSAGES, percentile  # noqa: E402
from bench.machine import describe_machine  # noqa: E402
from settings import Settings  # noqa: E402


def celery_batches_worker() -> None:
    """Run as a worker process: the celery-batches design (argv: worker-celery-batches)."""
    from celery_batches import Batches

    from engine.types import UserTurn
    from tasks.app import GPU_QUEUE, RESPOND_TASK, celery_app, configure_celery
    from tasks.runtime import init_runtime

    settings = Settings()
    configure_celery(settings)
    # The buffer holds unacknowledged messages: prefetch must let batch_size in.
    celery_app.conf.worker_prefetch_multiplier = settings.batch_size
    runtime = init_runtime(settings)
    celery_app.conf.include = []  # the shipped `respond` task stays out of this worker

    @celery_app.task(base=Batches, name=RESPOND_TASK, flush_every=settings.batch_size,
                     flush_interval=settings.batch_window_ms / 1000, acks_late=True)
    def respond(requests: list) -> None:
        for request in requests:
            celery_app.backend.store_result(request.id, None, "STARTED", request=request)
        turns = [UserTurn.model_validate(r.args[0]) for r in requests]
        try:
            replies = runtime.handle_batch(turns)
        except Exception as error:
            for request in requests:
                celery_app.backend.mark_as_failure(request.id, error, request=request)
            raise
        for request, reply in zip(requests, replies, strict=True):
            celery_app.backend.mark_as_done(request.id, reply.model_dump(mode="json"),
                                            request=request)

    celery_app.worker_main(["worker", f"--queues={GPU_QUEUE}", "--pool=solo",
                            "--concurrency=1", "--loglevel=INFO", "--without-gossip",
                            "--without-mingle", f"--hostname=cb-{os.getpid()}@%h"])


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while "ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    return process


def measure(settings: Settings, chats: int, messages: int,
            tag: str) -> tuple[float, list[float]]:
    from engine.types import UserTurn
    from tasks.submit import QueueSubmitter

    submitter = QueueSubmitter(settings)
    latencies: list[float] = []

    async def person(i: int, count: int = messages) -> None:
        for n in range(count):
            turn = UserTurn(platform="bench", chat_id=f"{tag}-{i}", user_id=f"{tag}-{i}",
                            message_id=f"m{n}", text=MESSAGES[(i + n) % len(MESSAGES)])
            started = time.perf_counter()
            await submitter.submit(turn)
            latencies.append(time.perf_counter() - started)

    async def everyone() -> float:
        await person(-1, 1)  # warm up (first batch, connections)
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(person(i) for i in range(chats)))
        return len(latencies) / (time.perf_counter() - started)

    return asyncio.run(everyone()), latencies


def main() -> None:
    if sys.argv[1:2] == ["worker-celery-batches"]:
        celery_batches_worker()
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=8)
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--celery-batches", default="", help="PYTHONPATH entry for it")
    parser.add_argument("--designs", default="threads,celery-batches,solo")
    parser.add_argument("--stickers-dir", type=Path, default=REPO / "data" / "stickers")
    parser.add_argument("--model-cache", type=Path, default=REPO / "data" / "models")
    args = parser.parse_args()

    from tests.harness.services import start_redis
    from tests.tasks.cluster import Cluster

    redis_service = start_redis()
    work = Path(tempfile.mkdtemp(prefix="celery-batching-"))
    cluster = Cluster.create(redis_service, None, work, args.stickers_dir.resolve(),
                             args.model_cache.resolve(), STICKERBOT_REPLY_MODEL="auto")
    settings = cluster.settings()
    results = {}
    try:
        for design in args.designs.split(","):
            env = {**os.environ, **cluster.env}
            if design == "celery-batches":
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.celery_batches,
                                                                  str(REPO)]))
                command = [str(Path(__file__).resolve()), "worker-celery-batches"]
            else:
                if design == "solo":
                    env["STICKERBOT_BATCH_SIZE"] = "1"
                command = [str(REPO / "stickerbot.py"), "worker", "--queues", "gpu"]
            print(f"{design}: starting the worker...", flush=True)
            worker = start(command, env, work / f"worker-{design}.log")
            try:
                rate, latencies = measure(settings, args.chats, args.messages, design)
            finally:
                worker.terminate()
                worker.wait(timeout=60)
            results[design] = {"throughput_per_s": round(rate, 3),
                               "p50_s": round(percentile(latencies, 50), 3),
                               "p95_s": round(percentile(latencies, 95), 3),
                               "replies": len(latencies)}
            print(f"{design}: {rate:.3f} replies/s, p50 {percentile(latencies, 50):.2f} s, "
                  f"p95 {percentile(latencies, 95):.2f} s ({len(latencies)} replies)",
                  flush=True)
    finally:
        redis_service.stop()
    load = os.getloadavg()[0]
    print(f"machine: {describe_machine()}; load average (1 min) at the end {load:.1f}")
    out = REPO / "bench" / "results" / f"celery-batching-{datetime.now(UTC):%Y-%m-%dT%H%M}.json"
    out.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": describe_machine(), "load_average_1m": load,
                               "chats": args.chats, "messages_per_chat": args.messages,
                               "results": results}, indent=2) + "\n")
    print(f"saved {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
