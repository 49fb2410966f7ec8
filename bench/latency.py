"""Reply latency on the default profile: p50 and p95 over 30 messages, and tokens/s.

    .venv/bin/python bench/latency.py [--messages 30] [--data-dir DIR]

Messages go through the web chat API in-process (FastAPI test client -> in-process
queue -> responder -> database), three conversations of ten turns, some with
stickers. Needs the default sticker pack (`stickerbot stickers build`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine

MESSAGES = [
    "I finally got the job I interviewed for!",
    "my cat has been sick all week and I'm so worried",
    "ugh my roommate ate my leftovers AGAIN",
    "what are you up to today?",
    "I can't believe it, they threw me a surprise party",
    "I failed my driving test for the second time",
    "the smell in the subway this morning was disgusting",
    "I have a big presentation tomorrow and I'm terrified",
    "thanks for listening, it helps",
    "we're going to the beach this weekend!",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--stickers-dir", type=Path, default=Path("data/stickers"))
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from bots.web.app import create_app
    from engine.stickers import StickerLibrary
    from settings import Settings
    from tasks.runtime import init_runtime
    from tasks.submit import TurnSubmitter

    work = Path(tempfile.mkdtemp(prefix="stickerbot-bench-"))
    (work / "stickers").symlink_to(args.stickers_dir.resolve())
    settings = Settings(data_dir=work, model_cache=Path("data/models").resolve(),
                        rate_limit_burst=1000, rate_limit_per_minute=100000,
                        address_rate_limit_burst=1000, address_rate_limit_per_minute=100000)
    started = time.perf_counter()
    runtime = init_runtime(settings)
    print(f"machine: {describe_machine()}")  # after loading: the LLM sets torch's threads
    print(f"model load: {time.perf_counter() - started:.1f} s "
          f"({runtime.responder.version})")
    library = StickerLibrary.load(settings.stickers_dir)
    sticker_ids = [s.id for s in library][:: max(1, len(library) // 10)]
    client = TestClient(create_app(settings, TurnSubmitter(settings), library))

    # Three people, each with a token from the web chat (as scripts get one).
    people = [{"Authorization": "Bearer " + client.post("/api/chat/session").json()["token"]}
              for _ in range(3)]
    client.post("/api/chat/messages", json={"text": "hello"}, headers=people[0])
    latencies, words = [], []
    for i in range(args.messages):
        body = {"text": MESSAGES[i % len(MESSAGES)]}
        if i % 4 == 3:
            body["sticker_id"] = sticker_ids[i % len(sticker_ids)]
        t0 = time.perf_counter()
        response = client.post("/api/chat/messages", json=body, headers=people[i % 3])
        latencies.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
        words.append(len(response.json()["reply"]["text"].split()))

    llm = runtime.responder.model.llm
    prompts = [[{"role": "user", "content": m}] for m in MESSAGES]
    t0 = time.perf_counter()
    single = [llm.generate([p])[0] for p in prompts]
    single_tps = sum(g.new_tokens for g in single) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    batch = llm.generate(prompts[:8])
    batch_tps = sum(g.new_tokens for g in batch) / (time.perf_counter() - t0)

    print(f"replies: {len(latencies)}; words per reply: mean {statistics.mean(words):.1f}")
    print(f"reply latency: p50 {percentile(latencies, 50):.0f} ms, "
          f"p95 {percentile(latencies, 95):.0f} ms, max {max(latencies):.0f} ms")
    print(f"generation: {single_tps:.1f} tokens/s single stream, "
          f"{batch_tps:.1f} tokens/s aggregate at batch 8 "
          f"(max_new_tokens {settings.max_new_tokens})")


if __name__ == "__main__":
    main()
