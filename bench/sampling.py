"""Sampled replies on the fast engine: the whole vocabulary (top_k 0) against top_k 64,
side by side in one run, batches of 1 and 8 (what the batcher sends).

Run: .venv/bin/python bench/sampling.py [--rounds 6]

The two settings alternate batch by batch on one loaded model, so other load falls on
both alike; p50 per call and the ratio are printed with the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engine import PROMPTS, SYSTEM
from bench.machine import describe_machine
from engine.fast_llm import FastChatLLM
from engine.llm import LLMConfig
from engine.tuned_llm import chat_llm_path
from settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    settings = Settings()
    print(describe_machine())
    llm = FastChatLLM.load(LLMConfig(path=chat_llm_path(settings),
                                     cache_dir=settings.model_cache_dir, max_new_tokens=40))
    conversations = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}]
                     for p in PROMPTS[:8]]
    for size in (1, 8):
        seconds: dict[int, list[float]] = {0: [], 64: []}
        for round_ in range(args.rounds):
            batch = conversations[round_ % 8:round_ % 8 + 1] if size == 1 else conversations
            for top_k in (0, 64):
                llm.config.top_k = top_k
                seconds[top_k].append(llm.generate(batch, temperature=0.7)[0].seconds)
        full, cut = statistics.median(seconds[0]), statistics.median(seconds[64])
        print(f"batch {size}: top_k 0 p50 {full:.2f} s, top_k 64 p50 {cut:.2f} s "
              f"({full / cut:.2f}x)")


if __name__ == "__main__":
    main()
