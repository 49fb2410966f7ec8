"""torch against CTranslate2 int8 (issue 19), side by side in one run on the default models.

Run: .venv/bin/python bench/engine.py [--replies 12] [--sessions training/sessions/test-seed1.jsonl]

1. decode tokens/s of the chat LLM (SmolLM2-135M, greedy): (40-token call - 1-token call)
   per prompt, so prefill is left out;
2. one reply end to end (perception, plan, PEGS cpu-small text and a sticker, the
   default `auto` reply model; the sticker is made overdue so every reply has one):
   p50 / p95, torch PEGS against the CTranslate2 hybrid;
3. perplexity of the held-out dialogues' bot turns given their context (built as the
   responder builds it), for the plain LLM and for PEGS, on both engines.

Measurements of the two engines alternate prompt by prompt, so load from other processes
falls on both alike; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.machine import describe_machine
from engine.fast_llm import FastChatLLM
from engine.llm import ChatLLM, LLMConfig

PROMPTS = [
    "I just got my dream job!", "My dog died this morning and I can't stop crying.",
    "I failed my driving test again.", "Someone stole my bike from outside the library.",
    "I'm nervous about my presentation tomorrow.", "My best friend is moving away.",
    "I finally finished my first marathon!", "I can't sleep, I keep thinking about exams.",
    "My sister just had a baby girl!", "Nobody remembered my birthday today.",
    "My boss yelled at me in front of everyone.", "We won the championship last night!",
]
SYSTEM = ("You are StickerBot, a caring friend chatting with someone. "
          "Talk to them directly, in one or two short sentences.")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def decode_speed(torch_llm: ChatLLM, fast_llm: FastChatLLM) -> None:
    rates: dict[str, list[float]] = {"torch": [], "ct2": []}
    for text in PROMPTS:
        conversation = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
        for name, llm in (("torch", torch_llm), ("ct2", fast_llm)):
            one = llm.generate([conversation], max_new_tokens=1, temperature=0.0)[0]
            full = llm.generate([conversation], max_new_tokens=40, temperature=0.0)[0]
            if full.new_tokens > 8:
                rates[name].append((full.new_tokens - 1) / max(1e-6, full.seconds - one.seconds))
    t, c = statistics.median(rates["torch"]), statistics.median(rates["ct2"])
    print(f"decode (SmolLM2-135M, greedy, median of {len(rates['ct2'])} prompts): torch fp32 "
          f"{t:.1f} tok/s, CTranslate2 int8 {c:.1f} tok/s: {c / t:.2f}x", flush=True)


def reply_latency(replies: int) -> None:
    from engine.embeddings import TextEncoder
    from engine.emotion import EmotionClassifier
    from engine.pegs.reply import checkpoint_root, load_pegs_reply_model
    from engine.perception import Perceiver
    from engine.responder import ConversationState, Responder
    from engine.safety.policy import load_safety_policy
    from engine.stickers import StickerLibrary
    from engine.types import UserTurn
    from settings import Settings

    settings = Settings(llm_engine="ct2")
    library = StickerLibrary.load(settings.stickers_dir)
    model = load_pegs_reply_model(settings, library, checkpoint_root(settings))
    fast = model.fast
    perceiver = Perceiver(EmotionClassifier.load(TextEncoder()), library, ocr=False)
    safety = load_safety_policy(settings, perceiver.classifier.encoder, library)
    responder = Responder(perceiver, model, sticker_rate=settings.sticker_rate, safety=safety)
    seconds: dict[str, list[float]] = {"torch": [], "ct2": []}
    stickers = {"torch": 0, "ct2": 0}
    for i in range(replies):
        turn = UserTurn(platform="bench", chat_id=str(i), user_id="u", message_id=str(i),
                        text=PROMPTS[i % len(PROMPTS)])
        for name in ("torch", "ct2"):
            model.fast = fast if name == "ct2" else None
            started = time.perf_counter()
            # Two bot turns without a sticker: one is overdue, so every reply carries one.
            reply = responder.respond(turn, ConversationState(bot_turns=2))
            seconds[name].append(time.perf_counter() - started)
            stickers[name] += reply.sticker is not None
            if i == 0:
                print(f"    {name}: {turn.text!r} -> {reply.text!r} "
                      f"[{reply.sticker.id if reply.sticker else 'no sticker'}]")
    t50, c50 = percentile(seconds["torch"], 0.5), percentile(seconds["ct2"], 0.5)
    print(f"one reply end to end (PEGS cpu-small, {replies} replies, sticker rate "
          f"{settings.sticker_rate}): torch p50 {t50:.2f} s p95 "
          f"{percentile(seconds['torch'], 0.95):.2f} s ({stickers['torch']} stickers) | "
          f"CTranslate2 p50 {c50:.2f} s p95 {percentile(seconds['ct2'], 0.95):.2f} s "
          f"({stickers['ct2']} stickers): {t50 / c50:.2f}x", flush=True)


def held_out(sessions: Path) -> list[tuple[list[dict[str, str]], str]]:
    """(context messages, bot reply) of each picture-free bot turn, built as in training."""
    from engine.embeddings import TextEncoder
    from engine.emotion import EmotionClassifier
    from engine.perception import Perceiver
    from engine.stickers import StickerLibrary
    from settings import Settings
    from training.data import dialogue_samples, read_sessions

    library = StickerLibrary.load(Settings().stickers_dir)
    perceiver = Perceiver(EmotionClassifier.load(TextEncoder()), library, ocr=False)
    samples = dialogue_samples(read_sessions(sessions), library, perceiver)
    return [(s.messages, s.target) for s in samples if s.target and not s.images]


def torch_log_likelihood(model: torch.nn.Module, prompt: list[int], target: list[int]) -> float:
    ids = torch.tensor([prompt + target])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1].float()
    return float(torch.log_softmax(logits, -1).gather(1, torch.tensor(target)[:, None]).sum())


def perplexity(sessions: Path, torch_llm: ChatLLM, fast_llm: FastChatLLM) -> None:
    from engine.pegs.fast import FastPegsDecoder
    from engine.pegs.reply import checkpoint_root
    from settings import Settings

    data = held_out(sessions)
    tok = torch_llm.tokenizer
    settings = Settings()
    from engine.pegs.checkpoint import load_checkpoint

    pegs = load_checkpoint(checkpoint_root(settings),
                           overrides={"llm_cache_dir": str(settings.model_cache_dir)}).eval()
    pegs_fast = FastPegsDecoder.load(pegs, settings.model_cache_dir)
    sums = {"torch": 0.0, "ct2": 0.0, "pegs-torch": 0.0, "pegs-ct2": 0.0}
    count = 0
    for messages, reply in data:
        prompt = tok(torch_llm._template(messages), add_special_tokens=False).input_ids
        target = tok(reply, add_special_tokens=False).input_ids + [tok.convert_tokens_to_ids(
            "<|im_end|>")]
        count += len(target)
        sums["torch"] += torch_log_likelihood(torch_llm.model, prompt, target)
        sums["ct2"] += fast_llm.log_likelihood(prompt, target)
        with pegs.merged_img_rows():
            sums["pegs-torch"] += torch_log_likelihood(pegs.llm, prompt, target)
        [scored] = pegs_fast.generator.score_batch(
            [tok.convert_ids_to_tokens(prompt + target)], max_input_length=0)
        sums["pegs-ct2"] += float(sum(scored.log_probs[len(prompt) - 1:]))
    ppl = {name: math.exp(-value / count) for name, value in sums.items()}
    print(f"perplexity of {len(data)} held-out bot turns ({count} tokens, {sessions.name}): "
          f"SmolLM2 torch {ppl['torch']:.2f}, CTranslate2 {ppl['ct2']:.2f} "
          f"({100 * (ppl['ct2'] / ppl['torch'] - 1):+.1f}%) | PEGS cpu-small torch "
          f"{ppl['pegs-torch']:.2f}, CTranslate2 {ppl['pegs-ct2']:.2f} "
          f"({100 * (ppl['pegs-ct2'] / ppl['pegs-torch'] - 1):+.1f}%)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=12)
    parser.add_argument("--sessions", type=Path,
                        default=Path("training/sessions/test-seed1.jsonl"))
    parser.add_argument("--skip", default="", help="comma list of decode,reply,perplexity")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(f"machine: {describe_machine()}; load avg {os.getloadavg()}", flush=True)
    config = LLMConfig(cache_dir=Path("data") / "models")
    torch_llm, fast_llm = ChatLLM.load(config), FastChatLLM.load(config)
    if "decode" not in skip:
        decode_speed(torch_llm, fast_llm)
    if "reply" not in skip:
        reply_latency(args.replies)
    if "perplexity" not in skip:
        perplexity(args.sessions, torch_llm, fast_llm)
    print(f"load avg after {os.getloadavg()}")


if __name__ == "__main__":
    main()
