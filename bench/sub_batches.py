"""How a batch of concurrent chats is cut into sub-batches on the fast engine: the batch
split in two halves (as until 2026-12-05) against the planned sub-batches of prompts of
similar length (`engine.fast_llm.plan_sub_batches`), side by side in one run.

Run: .venv/bin/python bench/sub_batches.py [--batches 6] [--size 8]

The prompts are the ones the default responder builds for turns of the corpus's
validation dialogues (system prompt with guidance, history, the new turn), cut at random
turns so their lengths vary as in a busy server's batch. Replies are greedy, so both
ways decode the same tokens; the two ways alternate batch by batch, so other load falls
on both alike. Printed: p50 seconds per batch for each, the ratio, and the planner's
modelled seconds beside the measured ones (how well its cost constants fit this machine).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine
from engine.fast_llm import (
    REPLY_TOKENS,
    FastChatLLM,
    makespan,
    plan_sub_batches,
    sub_batch_seconds,
)
from engine.responder import ConversationState, PendingTurn, load_responder
from engine.settings import EngineSettings
from engine.types import HistoryTurn, UserTurn

VALIDATION = Path(__file__).resolve().parents[1] / "training/corpus/validation.jsonl"


def validation_turns(count: int, seed: int = 7) -> list[PendingTurn]:
    """`count` turns of validation dialogues, each with the dialogue before it as history."""
    dialogues = [json.loads(line)["conversation"] for line in VALIDATION.open()]
    rng = random.Random(seed)
    pending = []
    for index in range(count):
        turns = rng.choice(dialogues)
        cut = rng.randrange(len(turns))
        history = []
        for turn in turns[:cut]:
            sticker = turn.get("system_sticker") or {}
            history += [HistoryTurn(role="user", text=turn["user_message"] or ""),
                        HistoryTurn(role="bot", text=turn["system_message"],
                                    sticker_description=sticker.get("description"))]
        text = turns[cut]["user_message"] or "hi"
        pending.append(PendingTurn(
            UserTurn(platform="bench", chat_id=str(index), user_id=str(index),
                     message_id=str(index), text=text),
            ConversationState(history=history, bot_turns=cut)))
    return pending


def built_prompts(batches: int, size: int) -> tuple[FastChatLLM, list[list[list[dict]]]]:
    """The conversations the default responder hands its LLM, batch by batch."""
    responder = load_responder(EngineSettings())
    llm = responder.model.llm
    if not isinstance(llm, FastChatLLM):
        sys.exit("the default LLM is not on CTranslate2 here: nothing to compare")
    seen: list[list[list[dict]]] = []
    generate = llm.generate

    def capture(conversations, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(conversations)
        return generate(conversations, **kwargs)

    llm.generate = capture  # type: ignore[method-assign]
    turns = validation_turns(batches * size)
    for start in range(0, len(turns), size):
        responder.respond_batch(turns[start:start + size])
    llm.generate = generate  # type: ignore[method-assign]
    return llm, seen


def halves(llm: FastChatLLM, tokens: list[list[str]], budget: int) -> float:
    """The batch as one call split into a half per replica (the way before the planner)."""
    started = time.perf_counter()
    llm.generator.generate_batch(
        tokens, max_length=budget, end_token=llm._stop_ids, return_end_token=True,
        include_prompt_in_result=False, sampling_topk=1,
        max_batch_size=0 if llm.replicas <= 1 else -(-len(tokens) // llm.replicas))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--size", type=int, default=8)
    args = parser.parse_args()
    print(describe_machine())
    llm, batches = built_prompts(args.batches, args.size)
    budget = llm.config.max_new_tokens
    before, after, modelled = [], [], []
    for conversations in batches:
        tokens = [llm.tokenizer.convert_ids_to_tokens(
            llm.tokenizer(p, add_special_tokens=False).input_ids)
            for p in llm.prompts(conversations)]
        lengths = [len(t) for t in tokens]
        groups = plan_sub_batches(lengths, llm.replicas, min(budget, REPLY_TOKENS))
        modelled.append(makespan([sub_batch_seconds([lengths[i] for i in g],
                                                    min(budget, REPLY_TOKENS))
                                  for g in groups], llm.replicas))
        for _ in range(2):  # alternate, twice
            before.append(halves(llm, tokens, budget))
            started = time.perf_counter()
            llm.generate(conversations, temperature=0)
            after.append(time.perf_counter() - started)
        print(f"prompt tokens {sorted(lengths)}: sub-batches {[len(g) for g in groups]}, "
              f"halves {before[-1]:.2f} s, planned {after[-1]:.2f} s "
              f"(modelled {modelled[-1]:.2f} s)")
    old, new = statistics.median(before), statistics.median(after)
    print(f"{len(batches)} batches of up to {args.size} prompts, {llm.replicas} replicas: "
          f"halves p50 {old:.2f} s, planned sub-batches p50 {new:.2f} s ({old / new:.2f}x); "
          f"modelled p50 {statistics.median(modelled):.2f} s")


if __name__ == "__main__":
    main()
