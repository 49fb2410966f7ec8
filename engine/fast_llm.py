"""The fast CPU engine for the chat LLM: CTranslate2 with int8 weights.

On the default SmolLM2-135M on 2 shared cores it decoded 2.7-2.9x faster than
transformers in fp32 at a perplexity 1% higher (bench/engine.py measures both side by
side). It replaces `ChatLLM`'s generation only: the same prompt template, prompt budget,
stop tokens and sentence trimming (it is a `ChatLLM` whose `generate` runs CTranslate2).
Torch stays the engine for training, for GPU workers and wherever hidden states or
input embeddings are needed (PEGS with pictures; see engine/pegs/fast.py).

The CTranslate2 copy is made once from the Hugging Face directory of the model
(`engine.llm.local_model_dir`) and cached beside it as `<name>-ct2-int8/`, stamped with
what it was made from; `python -m engine.fast_llm` makes it ahead of time (`make run`
does), otherwise the first load does (seconds).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.llm import (
    ChatLLM,
    Generation,
    LLMConfig,
    default_gguf_file,
    local_model_dir,
    stop_token_ids,
    version_name,
)

log = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "ct2")
QUANTIZATION = "int8"


def ct2_available() -> bool:
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


def pick_engine(engine: str) -> str:
    """"auto": CTranslate2 on machines without a CUDA GPU (when installed), else torch."""
    if engine not in ENGINES:
        raise ValueError(f"llm engine {engine!r}: choose one of {ENGINES}")
    if engine != "auto":
        return engine
    import torch

    return "ct2" if ct2_available() and not torch.cuda.is_available() else "torch"


def _stamp(source: Path, quantization: str) -> dict[str, Any]:
    import ctranslate2

    weights = sorted(source.glob("*.safetensors")) or sorted(source.glob("*.bin"))
    return {"source": str(source.resolve()), "quantization": quantization,
            "ctranslate2": ctranslate2.__version__,
            "weights": {w.name: w.stat().st_size for w in weights}}


def convert(source: Path, target: Path, quantization: str = QUANTIZATION) -> Path:
    """A CTranslate2 copy of the Hugging Face model in `source`, made once into `target`
    (written beside it and renamed, so a crash never leaves half a model)."""
    from ctranslate2.converters import TransformersConverter

    stamp = _stamp(source, quantization)
    try:
        if json.loads((target / "source.json").read_text()) == stamp:
            return target
    except (OSError, ValueError):
        pass
    started = time.perf_counter()
    staging = target.parent / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    TransformersConverter(str(source), low_cpu_mem_usage=True).convert(
        str(staging), quantization=quantization, force=True)
    (staging / "source.json").write_text(json.dumps(stamp))
    shutil.rmtree(target, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:  # another process finished first; its copy is as good
        shutil.rmtree(staging, ignore_errors=True)
    log.info("converted %s to CTranslate2 %s in %.1f s: %s", source.name, quantization,
             time.perf_counter() - started, target)
    return target


def ct2_dir(source: Path, cache_dir: Path, quantization: str = QUANTIZATION) -> Path:
    return Path(cache_dir) / f"{source.name}-ct2-{quantization}"


def default_threads(threads: int | None) -> int:
    """As ChatLLM: 1 on machines with <= 2 cores (0 = CTranslate2's own choice)."""
    return threads or (1 if (os.cpu_count() or 1) <= 2 else 0)


def default_replicas(threads: int | None) -> int:
    """Model replicas that decode parts of a batch side by side: one per core on a
    machine of <= 2 cores. There one decoding thread is fastest for one chat (a second
    thread costs more in synchronisation than it gains on a 135M model), so the
    sub-batches of concurrent chats run on two replicas, one per core (bench/concurrency.py,
    8 chats at once: 4.09 replies/s against 2.76 with one replica, p95 2.29 s against
    3.67 s)."""
    cores = os.cpu_count() or 1
    return cores if threads is None and cores <= 2 else 1


# What a sub-batch costs one replica (one thread) on CTranslate2, in seconds: the prompts
# are read at once only up to the shortest one; every token past it is fed one decoding
# step at a time, like a generated token (CTranslate2 documents this for variable-length
# prompts). A step costs a fixed part plus a little per row. Fitted on AMD EPYC, 2 cores,
# the tuned SmolLM2-135M in int8 (bench/sub_batches.py prints model against measure).
PREFILL_S_PER_TOKEN = 0.00045
STEP_S = 0.013
STEP_S_PER_ROW = 0.002
REPLY_TOKENS = 32  # a typical reply with its sticker action: how long a sub-batch decodes
EXHAUSTIVE_ROWS = 10  # up to this many prompts every grouping is tried (2^9 of them)


def sub_batch_seconds(lengths: list[int], new_tokens: int) -> float:
    """The modelled time of one sub-batch of prompts with these token counts."""
    rows, shortest = len(lengths), min(lengths)
    steps = max(lengths) - shortest + new_tokens
    return PREFILL_S_PER_TOKEN * rows * shortest + steps * (STEP_S + STEP_S_PER_ROW * rows)


def makespan(costs: list[float], replicas: int) -> float:
    """When the last replica finishes, each sub-batch going to the least loaded replica,
    the costliest first (the order they are submitted in)."""
    loads = [0.0] * replicas
    for cost in sorted(costs, reverse=True):
        loads[loads.index(min(loads))] += cost
    return max(loads)


def plan_sub_batches(lengths: list[int], replicas: int, new_tokens: int) -> list[list[int]]:
    """Indices of the prompts, grouped into the sub-batches that finish soonest, the
    costliest first (the order to submit them in).

    Prompts are sorted by length and cut into runs of neighbours, so a sub-batch feeds few
    prompt tokens step by step; fewer, larger sub-batches share each step's fixed cost.
    Every cut is tried up to EXHAUSTIVE_ROWS prompts; beyond that, runs of four."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])

    def cost(group: list[int]) -> float:
        return sub_batch_seconds([lengths[i] for i in group], new_tokens)

    if len(order) > EXHAUSTIVE_ROWS:
        best = [order[i:i + 4] for i in range(0, len(order), 4)]
    else:
        best, best_seconds = [order], math.inf
        for cuts in itertools.product((False, True), repeat=max(0, len(order) - 1)):
            groups, start = [], 0
            for end, cut in enumerate(cuts, 1):
                if cut:
                    groups.append(order[start:end])
                    start = end
            groups.append(order[start:])
            seconds = makespan([cost(g) for g in groups], replicas)
            if seconds < best_seconds:
                best, best_seconds = groups, seconds
    return sorted(best, key=cost, reverse=True)


class FastChatLLM(ChatLLM):
    """`ChatLLM` whose generation runs on CTranslate2 (no torch model in memory)."""

    def __init__(self, generator: Any, tokenizer: Any, version: str, config: LLMConfig,
                 stop_ids: list[int], replicas: int = 1) -> None:
        self.generator = generator
        self.replicas = replicas  # the generator's inter_threads: sub-batches run side by side
        self.model = None  # no torch model: nothing here may need one
        self.tokenizer = tokenizer
        self.version = version
        self.config = config
        self._lock = threading.Lock()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._stop_ids = stop_ids

    @classmethod
    def load(cls, config: LLMConfig) -> FastChatLLM:
        import ctranslate2
        from transformers import AutoTokenizer, GenerationConfig

        started = time.perf_counter()
        source = local_model_dir(config)
        target = convert(source, ct2_dir(source, config.cache_dir))
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        try:
            generation = GenerationConfig.from_pretrained(source, local_files_only=True)
        except OSError:
            generation = None
        stops = stop_token_ids(SimpleNamespace(generation_config=generation), tokenizer)
        ctranslate2.set_random_seed(config.seed)  # takes effect at the stream's first use
        replicas = default_replicas(config.threads)
        generator = ctranslate2.Generator(str(target), device="cpu", compute_type=QUANTIZATION,
                                          intra_threads=default_threads(config.threads),
                                          inter_threads=replicas)
        name = version_name(Path(config.path).expanduser() if config.path
                            else default_gguf_file()) + "-ct2"
        log.info("loaded LLM %s on CTranslate2 %s in %.1f s", name, QUANTIZATION,
                 time.perf_counter() - started)
        return cls(generator, tokenizer, name, config, stops, replicas)

    def generate(self, conversations: list[list[dict[str, str]]], *,
                 max_new_tokens: int | None = None,
                 temperature: float | None = None) -> list[Generation]:
        """As `ChatLLM.generate`: one reply per conversation, in one batch. Sampling
        is seeded once per process, not per input: CTranslate2 keeps one random stream per
        thread, seeded at its first use, so sampled replies are not reproducible per input
        (greedy ones are)."""
        if not conversations:
            return []
        budget = self.config.max_new_tokens if max_new_tokens is None else max_new_tokens
        temp = self.config.temperature if temperature is None else temperature
        prompts = self.prompts(conversations)
        tokens = [self.tokenizer.convert_ids_to_tokens(
            self.tokenizer(p, add_special_tokens=False).input_ids) for p in prompts]
        sampling = ({"sampling_topk": self.config.top_k, "sampling_topp": self.config.top_p,
                     "sampling_temperature": temp} if temp > 0 else {"sampling_topk": 1})
        groups = plan_sub_batches([len(t) for t in tokens], self.replicas,
                                  min(budget, REPLY_TOKENS))
        results: list[Any] = [None] * len(tokens)
        with self._lock:
            started = time.perf_counter()
            # Each sub-batch is one job; the costliest are queued first, and each replica
            # takes the next job when it is free.
            pending = [(group, self.generator.generate_batch(
                [tokens[i] for i in group], max_length=budget, end_token=self._stop_ids,
                return_end_token=True, include_prompt_in_result=False, asynchronous=True,
                **sampling)) for group in groups]
            for group, answers in pending:
                for i, answer in zip(group, answers, strict=True):
                    results[i] = answer.result()
            seconds = time.perf_counter() - started
        return [self._finish(r.sequences_ids[0], budget, seconds) for r in results]

    def log_likelihood(self, prompt_ids: list[int], target_ids: list[int]) -> float:
        """Sum of log p(target | prompt) (for perplexity; bench/engine.py)."""
        ids = prompt_ids + target_ids
        [result] = self.generator.score_batch([self.tokenizer.convert_ids_to_tokens(ids)],
                                              max_input_length=0)
        # log_probs[i] scores token i + 1 given the tokens before it.
        return float(sum(result.log_probs[len(prompt_ids) - 1:]))


# What CTranslate2's converter and loader raise for a model they cannot run.
CT2_ERRORS = (ValueError, NotImplementedError, RuntimeError, OSError)


def load_chat_llm(config: LLMConfig, engine: str = "auto") -> ChatLLM:
    """The chat LLM on the chosen engine (`pick_engine`); with "auto", a model that
    CTranslate2 cannot convert runs on torch instead."""
    if pick_engine(engine) == "ct2":
        try:
            return FastChatLLM.load(config)
        except CT2_ERRORS as error:
            if engine == "ct2":
                raise
            log.warning("CTranslate2 cannot run this LLM (%s); using torch", error)
    return ChatLLM.load(config)


def main() -> None:
    """Make the CTranslate2 copy of the configured model now (`make run` calls this)."""
    from engine.settings import EngineSettings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = EngineSettings()
    if pick_engine(settings.llm_engine) != "ct2":
        log.info("llm engine is torch here: nothing to convert")
        return
    from engine.tuned_llm import chat_llm_path

    config = LLMConfig(path=chat_llm_path(settings), cache_dir=settings.model_cache_dir)
    source = local_model_dir(config)
    print(convert(source, ct2_dir(source, config.cache_dir)))
    from engine.pegs.reply import served_checkpoint

    root = served_checkpoint(settings)
    if root is not None:  # PEGS answers: its own copy, LoRA and [IMG] rows merged
        from engine.pegs.checkpoint import load_checkpoint
        from engine.pegs.fast import FastPegsDecoder

        model = load_checkpoint(root, overrides={"llm_cache_dir": str(config.cache_dir)})
        print(FastPegsDecoder.load(model.eval(), config.cache_dir).target)


if __name__ == "__main__":
    main()
