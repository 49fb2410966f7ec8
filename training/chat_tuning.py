"""Tune the chat LLM on our dialogue corpus: LoRA on SmolLM2, saved as a small adapter.

    python -m training.chat_tuning          # writes engine/chat_lora/

Each corpus dialogue is one training sequence, built exactly as the bot builds its
prompt (engine.prompting.build_messages: system prompt with the emotion model's guidance
for the last turn, then every turn). The loss covers every bot turn. A bot turn that
carries a sticker ends with the sticker tool action `[sticker: <description>]` (the
library's description), so the tuned model learns from the corpus when a sticker fits
and which; `engine.reply_model.RetrievalReplyModel` searches that action in the library.

One sequence a dialogue rather than one a bot turn: the turns share their history, so
this is ~5x fewer tokens, which is what makes a tuning run fit 2 CPU cores (~170
trained tokens/s). The adapter is ~4 MB; `engine.tuned_llm.merged_model_dir` merges
it into the base model once, at `make models`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import get_cosine_schedule_with_warmup

from engine.planning import plan_reply
from engine.prompting import build_messages
from engine.reply_model import TOOL_ACTION
from engine.stickers import StickerLibrary
from engine.types import HistoryTurn, Media, MediaKind, UserTurn
from training.data import read_sessions, sticker_of
from training.trainer import plot_losses

log = logging.getLogger(__name__)

CORPUS = Path("training/corpus")


@dataclass
class TuneConfig:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                "up_proj", "down_proj")
    lr: float = 3e-4
    epochs: int = 1
    # Padded tokens per optimizer step: 2048 runs ~150 tokens/s on 2 cores; 4096 needs
    # ~18 GB and runs several times slower.
    tokens_per_batch: int = 2048
    warmup_ratio: float = 0.05
    max_tokens: int = 640  # longer dialogues lose their oldest turns
    seed: int = 0


# --- data -------------------------------------------------------------------------------
def bot_text(reply: str, sticker_description: str | None) -> str:
    """A bot turn as the tuned model writes it: the reply, then the sticker action."""
    if sticker_description:
        return f"{reply} {TOOL_ACTION.format(sticker_description)}".strip()
    return reply


def dialogue_messages(session: dict[str, Any], library: StickerLibrary,
                      perceiver: Any) -> list[dict[str, str]]:
    """One corpus dialogue as the bot's prompt for its last turn, plus that last reply."""
    history: list[HistoryTurn] = []
    turns = session["conversation"]
    for number, turn in enumerate(turns):
        user_sticker = sticker_of(turn.get("user_sticker"), library)
        bot_sticker = sticker_of(turn.get("system_sticker"), library)
        text = str(turn.get("user_message") or "")
        reply = str(turn.get("system_message") or "").strip()
        if number == len(turns) - 1:
            media = [] if user_sticker is None else [Media(
                kind=MediaKind.sticker, path=str(library.png_file(user_sticker.id)),
                format="png", emoji=user_sticker.emoji, library_id=user_sticker.id)]
            perception = perceiver.perceive(UserTurn(
                platform="train", chat_id="c", user_id="u", message_id="m", text=text,
                media=media))
            messages = build_messages(history, text, perception, plan_reply(perception))
            description = bot_sticker.content_description if bot_sticker else None
            return messages + [{"role": "assistant", "content": bot_text(reply, description)}]
        history.append(HistoryTurn(
            role="user", text=text, sticker_id=user_sticker.id if user_sticker else None,
            sticker_description=user_sticker.content_description if user_sticker else None))
        history.append(HistoryTurn(
            role="bot", text=reply, sticker_id=bot_sticker.id if bot_sticker else None,
            sticker_description=bot_sticker.content_description if bot_sticker else None))
    raise ValueError(f"dialogue {session.get('id')!r} has no turns")


def encode(tokenizer: Any, messages: list[dict[str, str]],
           max_tokens: int) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 outside the bot's turns) of one templated dialogue;
    the oldest turns go while it is longer than `max_tokens`."""
    while True:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = tokenizer.apply_chat_template(messages[:i], tokenize=False) if i else ""
            start = text.index(message["content"], len(before))
            spans.append((start, len(tokenizer.apply_chat_template(messages[:i + 1],
                                                                   tokenize=False)) - 1))
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if len(encoded.input_ids) <= max_tokens or len(messages) <= 3:
            break
        messages = [messages[0], *messages[3:]]  # drop the oldest user and bot turn
    labels = [token if any(a <= start < b for a, b in spans) else -100
              for token, (start, _end) in zip(encoded.input_ids, encoded.offset_mapping,
                                              strict=True)]
    return encoded.input_ids[:max_tokens], labels[:max_tokens]


def batches(examples: list[tuple[list[int], list[int]]], tokens_per_batch: int,
            rng: random.Random) -> list[list[int]]:
    """Indices grouped by length so padding stays small; the groups in random order."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    groups, group = [], []
    for i in order:
        longest = max([len(examples[j][0]) for j in group] + [len(examples[i][0])])
        if group and longest * (len(group) + 1) > tokens_per_batch:
            groups.append(group)
            group = []
        group.append(i)
    if group:
        groups.append(group)
    rng.shuffle(groups)
    return groups


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id)
    labels = torch.full((len(examples), width), -100)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (tokens, targets) in enumerate(examples):
        ids[row, :len(tokens)] = torch.tensor(tokens)
        labels[row, :len(targets)] = torch.tensor(targets)
        mask[row, :len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# --- training ---------------------------------------------------------------------------
def mean_loss(model: Any, examples: list, pad_id: int, tokens_per_batch: int) -> float:
    """Token-weighted loss over the bot's turns."""
    total, count = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for group in batches(examples, tokens_per_batch, random.Random(0)):
            batch = collate([examples[i] for i in group], pad_id)
            tokens = int((batch["labels"][:, 1:] != -100).sum())
            total += float(model(**batch).loss) * tokens
            count += tokens
    model.train()
    return total / max(count, 1)


def tune(model: Any, tokenizer: Any, train: list, val: list, config: TuneConfig,
         progress: bool = True,
         on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """LoRA on `model` (a transformers causal LM); returns the peft model, the losses and
    timings. `on_epoch` gets the same after each epoch (to save what is done so far)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(config.seed)
    peft_model = get_peft_model(model, LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
        target_modules=list(config.targets), task_type="CAUSAL_LM"))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = random.Random(config.seed)
    steps_per_epoch = len(batches(train, config.tokens_per_batch, random.Random(0)))
    total = steps_per_epoch * config.epochs
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(
        optimizer, max(1, int(total * config.warmup_ratio)), total)
    started = time.perf_counter()
    val_before = mean_loss(peft_model, val, pad_id, config.tokens_per_batch) if val else None
    history, validation, step = [], [], 0
    peft_model.train()
    for epoch in range(1, config.epochs + 1):
        for group in batches(train, config.tokens_per_batch, rng):
            loss = peft_model(**collate([train[i] for i in group], pad_id)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            history.append({"step": step, "loss": loss.item()})
            if progress and (step % 5 == 0 or step == total):
                elapsed = time.perf_counter() - started
                print(f"epoch {epoch} step {step}/{total} loss {float(loss):.3f} "
                      f"{elapsed / 60:.1f} min, ~{elapsed / step * (total - step) / 60:.0f} "
                      "min left", flush=True)
        if val:
            validation.append({"epoch": epoch, "step": step,
                               "val_loss": mean_loss(peft_model, val, pad_id,
                                                     config.tokens_per_batch)})
            print(f"epoch {epoch}: validation loss {validation[-1]['val_loss']:.3f}",
                  flush=True)
        result = {"model": peft_model, "history": history, "validation": validation,
                  "val_loss_before": val_before, "steps": step, "epochs_done": epoch,
                  "seconds": round(time.perf_counter() - started, 1)}
        if on_epoch is not None:
            on_epoch(result)
    return result


def load_examples(paths: list[Path], tokenizer: Any, library: StickerLibrary, perceiver: Any,
                  max_tokens: int) -> list[tuple[list[int], list[int]]]:
    sessions = [s for path in paths for s in read_sessions(path)]
    return [encode(tokenizer, dialogue_messages(s, library, perceiver), max_tokens)
            for s in sessions]


def save_run(out: Path, result: dict[str, Any], about: dict[str, Any]) -> None:
    """The adapter, `tuning_report.json` and the loss plot, under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    result["model"].save_pretrained(out)
    (out / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
    weights = out / "adapter_model.safetensors"  # half precision: half the size, same replies
    save_file({k: v.half().contiguous() for k, v in load_file(weights).items()}, weights,
              metadata={"format": "pt"})
    last = result["validation"][-1]["val_loss"] if result["validation"] else None
    before = result["val_loss_before"]
    report = {**about, "val_loss_before": before, "validation": result["validation"],
              "perplexity_before": math.exp(before) if before is not None else None,
              "perplexity_after": math.exp(last) if last is not None else None,
              "steps": result["steps"], "epochs_done": result["epochs_done"],
              "seconds": result["seconds"],
              "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    (out / "tuning_report.json").write_text(json.dumps(report, indent=1) + "\n")
    plot_losses([{**h, "stage": "chat LLM"} for h in result["history"]],
                [{**v, "stage": "chat LLM"} for v in result["validation"]],
                out / "tuning_loss.png")


def main(argv: list[str] | None = None) -> int:
    import sys

    from engine.llm import _load_directory
    from engine.tuned_llm import ADAPTER_DIR, base_model_dir
    from training.pipeline import _perceiver

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, action="append",
                        default=None, help="dialogues (default: the corpus train split)")
    parser.add_argument("--val", type=Path, action="append", default=None)
    parser.add_argument("--out", type=Path, default=ADAPTER_DIR)
    parser.add_argument("--stickers", type=Path, default=Path("data/stickers"))
    parser.add_argument("--epochs", type=int, default=TuneConfig.epochs)
    parser.add_argument("--limit", type=int, default=None, help="first N dialogues (a try)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(os.cpu_count() or 1)
    config = TuneConfig(epochs=args.epochs)
    library = StickerLibrary.load(args.stickers)
    perceiver = _perceiver(library)
    base = base_model_dir()
    model, tokenizer = _load_directory(base)
    train_paths = args.train or [CORPUS / "train.jsonl"]
    val_paths = args.val or [CORPUS / "validation.jsonl"]
    train = load_examples(train_paths, tokenizer, library, perceiver, config.max_tokens)
    val = load_examples(val_paths, tokenizer, library, perceiver, config.max_tokens)
    if args.limit:
        train, val = train[:args.limit], val[:max(1, args.limit // 8)]
    tokens = sum(len(ids) for ids, _ in train)
    print(f"{len(train)} training dialogues, {tokens} tokens; {len(val)} validation",
          flush=True)
    about = {"command": "python -m training.chat_tuning " + " ".join(
                 sys.argv[1:] if argv is None else argv),
             "base_model": base.name, "config": asdict(config),
             "train": [str(p) for p in train_paths], "val": [str(p) for p in val_paths],
             "train_dialogues": len(train), "train_tokens": tokens, "val_dialogues": len(val)}
    result = tune(model, tokenizer, train, val, config,
                  on_epoch=lambda done: save_run(args.out, done, about))
    print(json.dumps({k: result[k] for k in ("val_loss_before", "validation", "seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
