"""PEGS on the default profile: reply latency and memory for `cpu-small`, and sticker
retrieval latency for large libraries (exact against approximate search).

    .venv/bin/python bench/pegs.py [--replies 10] [--sizes 100000,1000000] [--skip-replies]
                                   [--data-dir data]

Retrieval runs on unit vectors of the retrieval space's width (random in all
dimensions, and low-rank), with queries placed near stored vectors (as a reply's
embedding lies near its sticker's): exact inner-product search against HNSW (M=32, what
StickerIndex builds past 100k stickers) at efSearch 16/64/256, one query at a time,
with HNSW's recall@10 against the exact top 10.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine

HNSW_M = 32
MESSAGES = [
    "I finally got the job I interviewed for!",
    "my cat has been sick all week and I'm so worried",
    "ugh my roommate ate my leftovers AGAIN",
    "I can't believe it, they threw me a surprise party",
    "I have a big presentation tomorrow and I'm terrified",
]


def reply_figures(replies: int, data_dir: Path) -> dict:
    """`cpu-small` PEGS replies one at a time (as a worker answers a chat): model load time,
    latency p50/p90, tokens/s, and memory (peak RSS; trainable and frozen parameters)."""
    import torch

    from engine.pegs import PegsConfig, PegsModel
    from engine.pegs.reply import PegsReplyConfig, PegsReplyModel
    from engine.planning import plan_reply
    from engine.reply_model import ReplyRequest
    from engine.stickers import StickerLibrary
    from engine.types import Emotion, Perception

    rss_before = peak_rss_mb()
    started = time.perf_counter()
    model = PegsModel.from_config(PegsConfig.cpu_small(llm_cache_dir=str(data_dir / "models")))
    library = StickerLibrary.load(data_dir / "stickers")
    bot = PegsReplyModel(model, library, Path(tempfile.mkdtemp()),
                         config=PegsReplyConfig(max_new_tokens=40))
    load_s = time.perf_counter() - started
    plan = plan_reply(Perception(emotion=Emotion.sadness, valence=-0.6, confidence=0.9))
    sticker = Image.open(library.png_file(library.ids()[0])).convert("RGBA")
    times, tokens = [], 0
    for i in tqdm(range(replies), desc="cpu-small replies"):
        request = ReplyRequest(
            messages=[{"role": "system", "content": "You are a caring friend."},
                      {"role": "user", "content": MESSAGES[i % len(MESSAGES)]}],
            plan=plan, want_sticker=True, force_sticker=i % 2 == 0,
            images=[sticker] if i % 3 == 0 else [])
        t0 = time.perf_counter()
        [reply] = bot.reply([request])
        times.append(time.perf_counter() - t0)
        tokens += reply.new_tokens
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    figures = {
        "load_s": load_s, "replies": replies,
        "latency_p50_s": float(np.percentile(times, 50)),
        "latency_p90_s": float(np.percentile(times, 90)),
        "tokens_per_s": tokens / sum(times), "peak_rss_mb": peak_rss_mb(),
        "rss_growth_mb": peak_rss_mb() - rss_before, "trainable_params": trainable,
        "total_params": total, "torch_threads": torch.get_num_threads(),
    }
    print(f"cpu-small PEGS: load {load_s:.1f} s; reply p50 {figures['latency_p50_s']:.2f} s, "
          f"p90 {figures['latency_p90_s']:.2f} s over {replies} replies (<=40 new tokens, "
          f"half forced stickers, a third with an image); {figures['tokens_per_s']:.1f} tok/s; "
          f"peak RSS {figures['peak_rss_mb']:.0f} MB; parameters {total / 1e6:.1f} M of which "
          f"{trainable / 1e6:.2f} M trained; {figures['torch_threads']} torch threads")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replies", type=int, default=10)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-replies", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="holds stickers/ (stickerbot stickers build) and models/")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    print(f"machine: {describe_machine()}")
    figures: dict = {}
    if not args.skip_replies:
        figures["replies"] = reply_figures(args.replies, args.data_dir)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    figures["retrieval"] = retrieval_figures(sizes, args.dim, args.queries, seed=0)
    for row in figures["retrieval"]:
        print(f"{row['kind']:>8} {row['size']:>9,} stickers (d={row['dim']}): exact "
              f"{row['exact_ms_p50']:.2f} ms/query; HNSW build {row['hnsw_build_s']:.0f} s")
        for h in row["hnsw"]:
            print(f"{'':>30}HNSW efSearch {h['ef_search']:>3}: {h['ms_p50']:.3f} ms/query, "
                  f"recall@10 {h['recall_at_10']:.3f}, planted sticker first "
                  f"{h['top1_planted']:.3f} (exact {row['exact_top1_planted']:.3f})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


EF_SEARCH = (16, 64, 256)
# Data: "random" unit vectors fill all d dimensions (the hardest case: every stored
# vector is nearly equidistant, so ranks 2-10 are noise); "low-rank" ones lie in a
# 32-dimensional subspace, closer to learned embeddings, whose neighbours mean something.
KINDS = ("random", "low-rank")


def library_vectors(kind: str, size: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "random":
        return _unit(rng.standard_normal((size, dim), dtype=np.float32))
    basis = rng.standard_normal((32, dim), dtype=np.float32)
    return _unit(rng.standard_normal((size, 32), dtype=np.float32) @ basis)


def retrieval_figures(sizes: list[int], dim: int, queries: int, seed: int) -> list[dict]:
    """Exact (flat inner product) against HNSW (M=32, as StickerIndex builds it past
    100k stickers) at several efSearch values: latency per query, build time, recall@10
    against the exact top 10, and how often the planted sticker comes first."""
    import faiss

    rng = np.random.default_rng(seed)
    rows = []
    for kind in KINDS:
        for size in sizes:
            vectors = library_vectors(kind, size, dim, rng)
            # Queries near stored stickers, as a reply's embedding is near its sticker's.
            picks = rng.choice(size, queries, replace=False)
            query = _unit(vectors[picks] + 0.3 * _unit(
                rng.standard_normal((queries, dim), dtype=np.float32)))
            exact = faiss.IndexFlatIP(dim)
            exact.add(vectors)
            truth, exact_ms = _search(exact, query)
            hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            started = time.perf_counter()
            for start in tqdm(range(0, size, 50_000), desc=f"HNSW build {kind} {size:,}",
                              leave=False):
                hnsw.add(vectors[start:start + 50_000])
            row = {"kind": kind, "size": size, "dim": dim, "exact_ms_p50": exact_ms,
                   "exact_top1_planted": float(np.mean(truth[:, 0] == picks)),
                   "hnsw_build_s": time.perf_counter() - started, "hnsw": []}
            for ef in EF_SEARCH:
                hnsw.hnsw.efSearch = ef
                found, hnsw_ms = _search(hnsw, query)
                recall = float(np.mean([len(set(t) & set(f)) / 10
                                        for t, f in zip(truth, found, strict=True)]))
                row["hnsw"].append({"ef_search": ef, "ms_p50": hnsw_ms, "recall_at_10": recall,
                                    "top1_planted": float(np.mean(found[:, 0] == picks))})
            rows.append(row)
            del exact, hnsw, vectors
    return rows


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _search(index, query: np.ndarray) -> tuple[np.ndarray, float]:
    """Top-10 of each query, one query at a time (as a reply asks), and the p50 in ms."""
    results, times = [], []
    for row in query:
        started = time.perf_counter()
        _, ids = index.search(row[None, :], 10)
        times.append((time.perf_counter() - started) * 1000)
        results.append(ids[0])
    return np.array(results), float(np.median(times))


if __name__ == "__main__":
    main()
