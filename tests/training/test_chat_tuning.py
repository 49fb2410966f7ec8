"""Tuning the chat LLM on corpus dialogues: the loss covers exactly the bot's turns (with
their sticker actions), a tiny model learns in a few steps, and the adapter merges into a
model folder the bot can load."""

from __future__ import annotations

import random

import torch

from engine.llm import ChatLLM, LLMConfig
from engine.reply_model import find_action
from engine.tuned_llm import merged_model_dir
from tests.factories import save_tiny_llm, tiny_llm
from training.chat_tuning import TuneConfig, batches, bot_text, encode, tune

DIALOGUE = [
    {"role": "system", "content": "You are StickerBot."},
    {"role": "user", "content": "passed my driving test!!"},
    {"role": "assistant", "content": bot_text("First try? That's brilliant.",
                                              "A shiny golden trophy cup.")},
    {"role": "user", "content": "second try lol"},
    {"role": "assistant", "content": bot_text("Still counts. Where are you driving first?",
                                              None)},
]


def test_the_loss_covers_only_the_bots_turns_and_their_stickers() -> None:
    llm = tiny_llm()  # a word-level tokenizer: the learned text is read back by offsets
    ids, labels = encode(llm.tokenizer, DIALOGUE, max_tokens=512)
    text = llm.tokenizer.apply_chat_template(DIALOGUE, tokenize=False)
    offsets = llm.tokenizer(text, add_special_tokens=False,
                            return_offsets_mapping=True).offset_mapping
    learned = "".join(text[a:b] for (a, b), label in zip(offsets, labels, strict=True)
                      if label != -100)  # without the spaces between tokens
    assert "Firsttry?That'sbrilliant.[sticker:Ashinygoldentrophycup.]<|im_end|>" in learned
    assert "Stillcounts.Whereareyoudrivingfirst?<|im_end|>" in learned
    assert "drivingtest" not in learned and "StickerBot" not in learned
    assert find_action(DIALOGUE[2]["content"])[1] == "A shiny golden trophy cup."
    assert len(ids) == len(labels)


def test_a_long_dialogue_loses_its_oldest_turns_first() -> None:
    llm = tiny_llm()
    long = DIALOGUE[:1] + DIALOGUE[1:] * 20
    ids, labels = encode(llm.tokenizer, long, max_tokens=200)
    assert len(ids) <= 200
    text = llm.tokenizer.decode(ids)  # word-level: tokens come back space-separated
    assert text.startswith("<|im_start|> system") and text.endswith("<|im_end|>")
    assert 0 < text.count("assistant") < 20  # whole old turns went, the last ones stayed


def test_batches_hold_similar_lengths_within_the_token_budget() -> None:
    examples = [([1] * n, [1] * n) for n in (10, 200, 12, 190, 11, 205)]
    groups = batches(examples, tokens_per_batch=420, rng=random.Random(0))
    assert sorted(i for g in groups for i in g) == list(range(6))
    for group in groups:
        lengths = [len(examples[i][0]) for i in group]
        assert max(lengths) * len(group) <= 420
        assert max(lengths) - min(lengths) < 50


def test_a_tiny_model_learns_the_dialogue_and_merges(tmp_path) -> None:
    base = tmp_path / "base"
    save_tiny_llm(base)
    llm = ChatLLM.load(LLMConfig(path=str(base)))
    example = encode(llm.tokenizer, DIALOGUE, max_tokens=512)
    torch.manual_seed(0)
    result = tune(llm.model, llm.tokenizer, [example] * 4, [example],
                  TuneConfig(rank=4, alpha=8, lr=1e-2, epochs=3, tokens_per_batch=4096),
                  progress=False)
    assert result["steps"] == 3
    assert result["validation"][-1]["val_loss"] < result["val_loss_before"]
    adapter = tmp_path / "adapter"
    result["model"].save_pretrained(adapter)
    merged = merged_model_dir(tmp_path / "cache", adapter, base=base)
    assert (merged / "config.json").is_file() and merged.parent == tmp_path / "cache"
    assert merged_model_dir(tmp_path / "cache", adapter, base=base) == merged  # built once
    tuned = ChatLLM.load(LLMConfig(path=str(merged), max_new_tokens=4))
    assert tuned.generate([DIALOGUE[:2]])[0].new_tokens > 0
