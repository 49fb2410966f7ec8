"""Tiny random components built in code for the `tiny` PEGS profile (tests, benches).

A word-level tokenizer (so synthetic prompts tokenise predictably), a 2-layer Llama and
a 1-layer ViT: all random, all built in milliseconds, nothing read from disk.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    ViTConfig,
    ViTModel,
)

from engine.llm import FALLBACK_CHAT_TEMPLATE

SPECIAL = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"]
WORDS = (
    "system user assistant hello hi hey i am you are is it my your the a an so very really "
    "not no yes too me we they he she this that what why how today now again feel feeling "
    "happy sad angry scared surprised disgusted calm tired excited worried glad sorry "
    "great good bad ok fine wow love hate miss hug thanks congratulations hear to of for "
    "about with and but at in on new job work school exam friend family mom dad "
    "dog cat bird fish rabbit horse lost found won failed passed got made me makes look "
    "here there sticker picture funny cute cool . , ! ? : )"
).split()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level: one token per word or punctuation mark, ChatML chat template."""
    vocab = {token: i for i, token in enumerate(dict.fromkeys(SPECIAL + WORDS))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", eos_token="<|im_end|>", pad_token="<pad>",
        additional_special_tokens=["<|im_start|>"])
    tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    return tokenizer


def tiny_llm(vocab_size: int, seed: int = 1234, max_positions: int = 1024) -> LlamaForCausalLM:
    """A 2-layer Llama, width 64; untied head so both embedding tables get [IMG] rows."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = LlamaConfig(
            vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
            bos_token_id=1, eos_token_id=2, pad_token_id=3, tie_word_embeddings=False)
        return LlamaForCausalLM(config).eval()


def tiny_vit(image_size: int = 32, seed: int = 4321) -> ViTModel:
    """A 1-layer ViT, width 32, 8 px patches: [B, 3, 32, 32] -> [B, 17, 32]."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = ViTConfig(image_size=image_size, patch_size=8, hidden_size=32,
                           num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
        return ViTModel(config, add_pooling_layer=False).eval()
