"""Tiny real components built in code (the `tiny` profile), shared by tests.

A tiny random Llama with a word-level tokenizer answers in milliseconds; its words are
random, which is fine for tests of the pipeline around it.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from engine.llm import ChatLLM, LLMConfig

WORDS = ("hello i am so happy sad you are great job . ! ? the a my dog cat new work "
         "sorry to hear that wow congratulations it is ok friend today").split()
SPECIAL = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(SPECIAL + WORDS + ["system", "user", "assistant"])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>",
                                   eos_token="<|im_end|>", pad_token="<pad>",
                                   additional_special_tokens=["<|im_start|>"])


def tiny_model(vocab_size: int, max_positions: int = 256) -> LlamaForCausalLM:
    torch.manual_seed(1234)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=max_positions, eos_token_id=2, pad_token_id=3,
                         bos_token_id=1)
    return LlamaForCausalLM(config).eval()


def tiny_llm(max_positions: int = 256, **config: object) -> ChatLLM:
    tokenizer = tiny_tokenizer()
    return ChatLLM.from_model(tiny_model(len(tokenizer), max_positions), tokenizer, "tiny",
                              LLMConfig(**config))  # type: ignore[arg-type]


@functools.cache
def committed_crisis_classifier(base_path: str):
    """The committed crisis model over the MiniLM at base_path, loaded once per session."""
    from engine.safety.crisis import CrisisClassifier

    return CrisisClassifier.load(base_path)


def safety_policy(classifier, library, generated_dir, **gate: object):
    """The real safety policy (committed crisis model, bundled resources, sticker gate)
    on the session's MiniLM; `gate` goes to StickerGate (checker=...)."""
    from engine.safety.policy import SafetyPolicy
    from engine.safety.resources import CrisisResources
    from engine.safety.sticker_check import StickerGate

    crisis = committed_crisis_classifier(str(classifier.encoder.model_path))
    return SafetyPolicy(crisis=crisis, resources=CrisisResources.load(),
                        stickers=StickerGate(library, generated_dir, crisis=crisis,
                                             **gate))  # type: ignore[arg-type]


def tiny_responder(classifier, library, index, *, sticker_rate: float = 0.6, safety=None):
    """The real responder pipeline with the tiny LLM in place of SmolLM2, and the real
    safety policy (`safety_policy`, generated stickers in a fresh folder) unless given."""
    from engine.perception import Perceiver
    from engine.reply_model import RetrievalReplyModel
    from engine.responder import Responder

    llm = tiny_llm(max_positions=4096, max_new_tokens=12, quantize="none")
    model = RetrievalReplyModel(llm, library, index)
    if safety is None:
        safety = safety_policy(classifier, library, Path(tempfile.mkdtemp()) / "generated")
    return Responder(Perceiver(classifier, library), model, sticker_rate=sticker_rate,
                     safety=safety)


def save_tiny_llm(path) -> str:
    """The tiny LLM as a local model folder, for processes started with STICKERBOT_LLM_PATH."""
    tokenizer = tiny_tokenizer()
    tiny_model(len(tokenizer), max_positions=4096).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
