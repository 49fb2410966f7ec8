"""Replies for many chats at once: a real `stickerbot serve` on the default models, through
the web chat API.

    .venv/bin/python bench/concurrency.py [--chats 8] [--messages 6] [--single-chats 2]

Starts `stickerbot serve` (embedded queue, default models and settings, flood control
lifted) on a fresh data folder that shares data/stickers and data/models, then measures:

- one chat at a time: `--single-chats` chats one after the other, each of `--messages`
  messages; the reply latency p50 and the sequential throughput (replies/s);
- `--chats` chats at once: each sends `--messages` messages, each after the reply to the
  one before (people wait for the answer); throughput, its ratio to the sequential one,
  and the latency p50/p95.

Targets (issue 19): ratio >= 4 at 8 chats; p95 <= 3x the single-chat p50. The figures
and the machine go to bench/results/concurrency-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.latency import MESSAGES, percentile  # noqa: E402
from bench.machine import describe_machine  # noqa: E402
from tests.serve_process import free_port  # noqa: E402

START_TIMEOUT_S = 600


def start_serve(data_dir: Path, stickers: Path, models: Path,
                env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    (data_dir / "stickers").symlink_to(stickers.resolve())
    port = free_port()
    log = open(data_dir / "serve.log", "wb")  # open while serve runs
    process = subprocess.Popen(
        [sys.executable, str(REPO / "stickerbot.py"), "serve"], cwd=REPO, stdout=log,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "STICKERBOT_DATA_DIR": str(data_dir),
             "STICKERBOT_MODEL_CACHE": str(models.resolve()),
             "STICKERBOT_HTTP_PORT": str(port),
             # Flood control would turn the benchmark's fast typists (all on one address)
             # away, and the web layer's bound on waiting turns its concurrent chats.
             "STICKERBOT_RATE_LIMIT_PER_MINUTE": "100000", "STICKERBOT_RATE_LIMIT_BURST": "1000",
             "STICKERBOT_ADDRESS_RATE_LIMIT_PER_MINUTE": "100000",
             "STICKERBOT_ADDRESS_RATE_LIMIT_BURST": "1000",
             "STICKERBOT_MAX_WAITING_PER_ADDRESS": "64", "STICKERBOT_MAX_WAITING_TURNS": "64",
             **env})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited:\n{(data_dir / 'serve.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("serve did not start in time")


def chat(base: str, user: str, first: int, messages: int, latencies: list[float]) -> None:
    """One person: each message after the reply to the one before."""
    with httpx.Client(base_url=base, timeout=600) as client:
        body: dict[str, str] = {"user": user}
        session = client.post("/api/chat/session")
        if session.status_code == 200:  # the server gives identities (bearer tokens)
            client.headers["authorization"] = f"Bearer {session.json()['token']}"
            body = {}
        for n in range(first, first + messages):
            started = time.perf_counter()
            response = client.post("/api/chat/messages",
                                   json={**body, "text": MESSAGES[n % len(MESSAGES)]})
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)


def run_chats(base: str, chats: int, messages: int, tag: str) -> tuple[float, list[float]]:
    """`chats` people at once; (replies per second, latencies in seconds)."""
    latencies: list[float] = []
    threads = [threading.Thread(target=chat, args=(base, f"{tag}-{i}", i, messages, latencies))
               for i in range(chats)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - started), latencies


def reply_model(log: Path) -> str:
    found = re.findall(r"reply model (\S+)", log.read_text(errors="replace"))
    return found[-1] if found else "unknown"


def batch_stats(metrics: str) -> dict[str, float]:
    """How many batches serve made and their mean size, from its /metrics."""
    values = {}
    for line in metrics.splitlines():
        for name in ("stickerbot_batch_turns_sum", "stickerbot_batch_turns_count"):
            if line.startswith(name + " "):
                values[name.rsplit("_", 1)[1]] = float(line.split()[1])
    count = values.get("count", 0.0)
    return {"batches": count,
            "mean_turns": round(values.get("sum", 0.0) / count, 2) if count else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=8)
    parser.add_argument("--messages", type=int, default=6, help="per chat, under load")
    parser.add_argument("--single-chats", type=int, default=2,
                        help="chats one after the other, for the single-chat figures")
    parser.add_argument("--stickers-dir", type=Path, default=REPO / "data" / "stickers")
    parser.add_argument("--model-cache", type=Path, default=REPO / "data" / "models")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra settings for serve, e.g. STICKERBOT_BATCH_SIZE=1")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)

    work = Path(tempfile.mkdtemp(prefix="stickerbot-concurrency-"))
    print(f"starting stickerbot serve in {work} ...", flush=True)
    started = time.perf_counter()
    process, base = start_serve(work, args.stickers_dir, args.model_cache, env)
    try:
        print(f"serve ready in {time.perf_counter() - started:.0f} s", flush=True)
        run_chats(base, 2, 1, "warmup")
        # One person at a time, conversations as long as under load (a longer history
        # makes a longer prompt, so the comparison needs the same lengths).
        single: list[float] = []
        started = time.perf_counter()
        for k in range(args.single_chats):
            single += run_chats(base, 1, args.messages, f"single{k}")[1]
        single_rate = len(single) / (time.perf_counter() - started)
        load_rate, loaded = run_chats(base, args.chats, args.messages, "load")
        batches = batch_stats(httpx.get(f"{base}/metrics", timeout=30).text)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()

    single_p50 = percentile(single, 50)
    ratio = load_rate / single_rate
    p50, p95 = percentile(loaded, 50), percentile(loaded, 95)
    load = os.getloadavg()
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "load_average_1m_at_end": round(load[0], 2),
        "settings": {"batch_size": env.get("STICKERBOT_BATCH_SIZE", "default"),
                     "batch_window_ms": env.get("STICKERBOT_BATCH_WINDOW_MS", "default"),
                     **env},
        "reply_model": reply_model(work / "serve.log"),
        "single": {"messages": len(single), "p50_s": round(single_p50, 3),
                   "p95_s": round(percentile(single, 95), 3),
                   "throughput_per_s": round(single_rate, 3)},
        "concurrent": {"chats": args.chats, "messages": len(loaded),
                       "throughput_per_s": round(load_rate, 3),
                       "ratio_vs_sequential": round(ratio, 2),
                       "p50_s": round(p50, 3), "p95_s": round(p95, 3),
                       "p95_over_single_p50": round(p95 / single_p50, 2)},
        "batches_all_run": batches,
        "targets_met": {"ratio_at_least_4": ratio >= 4, "p95_at_most_3x_single_p50":
                        p95 <= 3 * single_p50},
    }
    print(f"machine: {result['machine']}; load average (1 min) at the end {load[0]:.1f}")
    print(f"reply model: {result['reply_model']}; settings: {result['settings']}")
    print(f"single chat: p50 {single_p50:.2f} s, sequential throughput "
          f"{single_rate:.3f} replies/s ({len(single)} replies)")
    print(f"{args.chats} chats at once: {load_rate:.3f} replies/s = {ratio:.2f}x sequential "
          f"(target >= 4); p50 {p50:.2f} s, p95 {p95:.2f} s = {p95 / single_p50:.2f}x "
          f"the single-chat p50 (target <= 3); {len(loaded)} replies")
    print(f"batches over the whole run: {batches['batches']:.0f}, "
          f"{batches['mean_turns']:.2f} turns each on average")
    out = REPO / "bench" / "results" / f"concurrency-{datetime.now(UTC):%Y-%m-%dT%H%M}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
