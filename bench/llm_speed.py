"""Chat LLM speed on this machine: load times, tokens/s, and time to a 40-token reply.

Run: .venv/bin/python bench/llm_speed.py [--cache-dir DIR] [--settings none,int8-attn]
Each setting is `<quantize>` or `<quantize>@<threads>` (e.g. `none@1`). The cold load
converts the GGUF into a fresh temporary cache; the warm load reads that cache. Timings
on a shared machine are noisy: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from engine.llm import ChatLLM, LLMConfig

PROMPTS = [
    "I just got my dream job!",
    "My dog died this morning and I can't stop crying.",
    "I failed my driving test again.",
    "Someone stole my bike from outside the library.",
    "I'm nervous about my presentation tomorrow.",
    "My best friend is moving to another country.",
    "I finally finished my first marathon!",
    "I can't sleep, I keep thinking about my exams.",
    "My sister just had a baby girl!",
    "Nobody remembered my birthday today.",
]
SYSTEM = ("You are StickerBot, a warm and empathetic friend in a chat. "
          "Answer in one or two short sentences of plain text.")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def conversation(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def fixed_length(llm: ChatLLM, texts: list[str], tokens: int) -> float:
    """Seconds to generate exactly `tokens` new tokens for each text in one batch."""
    prompts = [llm.tokenizer.apply_chat_template(conversation(t), tokenize=False,
                                                 add_generation_prompt=True) for t in texts]
    llm.tokenizer.padding_side = "left"
    batch = llm.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    started = time.perf_counter()
    with torch.inference_mode():
        llm.model.generate(**batch, max_new_tokens=tokens, min_new_tokens=tokens,
                           do_sample=False, pad_token_id=llm.tokenizer.pad_token_id)
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_setting(setting: str, cache_dir: Path) -> None:
    quantize, _, threads = setting.partition("@")
    before = torch.get_num_threads()
    started = time.perf_counter()
    llm = ChatLLM.load(LLMConfig(cache_dir=cache_dir, quantize=quantize,
                                 threads=int(threads) if threads else None))
    load_s = time.perf_counter() - started
    fixed_length(llm, PROMPTS[:1], 4)  # warm-up: first call allocates
    single = min(fixed_length(llm, PROMPTS[:1], 40) for _ in range(3))
    batch8 = fixed_length(llm, PROMPTS[:8], 40)
    replies = [llm.generate([conversation(p)])[0] for p in PROMPTS]
    seconds = [g.seconds for g in replies]
    tokens = statistics.mean(g.new_tokens for g in replies)
    print(f"[{setting} threads={torch.get_num_threads()}] warm load {load_s:.2f} s | "
          f"single stream {40 / single:.1f} tok/s | batch 8 {8 * 40 / batch8:.1f} tok/s | "
          f"reply (<=40 tok, mean {tokens:.1f} tok) p50 {percentile(seconds, 0.5):.2f} s "
          f"p95 {percentile(seconds, 0.95):.2f} s", flush=True)
    print(f"    e.g. {PROMPTS[0]!r} -> {replies[0].text!r}", flush=True)
    torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="reuse this cache (skips the cold GGUF load if filled)")
    parser.add_argument("--settings", default="none@2,none@1,int8-attn@1,int8@1")
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, load avg {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as scratch:
        cache_dir = args.cache_dir or Path(scratch)
        started = time.perf_counter()
        ChatLLM.load(LLMConfig(cache_dir=cache_dir))
        cold = time.perf_counter() - started
        print(f"load (cold: GGUF unless the cache was filled) {cold:.1f} s", flush=True)
        for setting in args.settings.split(","):
            bench_setting(setting, cache_dir)
    print(f"load avg after {os.getloadavg()}")


if __name__ == "__main__":
    main()
