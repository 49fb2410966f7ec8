"""PEGS decoded by CTranslate2 (engine/pegs/fast.py) on the committed cpu-small checkpoint,
the real SmolLM2 and the real CTranslate2 runtime: the [IMG] hidden states it recovers from
logits agree with torch's, the sticker rules hold, and picture turns stay on torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.pegs.checkpoint import DEFAULT_ROOT, load_checkpoint
from engine.pegs.fast import FastPegsDecoder
from engine.pegs.model import PegsModel
from engine.pegs.reply import PegsReplyConfig, PegsReplyModel
from engine.planning import plan_reply
from engine.prompting import build_messages
from engine.reply_model import ReplyRequest
from engine.types import Emotion, Perception

pytestmark = pytest.mark.slow
CHAT = [{"role": "system", "content": "You are a caring friend. They feel sadness."},
        {"role": "user", "content": "I failed my exam today."}]


@pytest.fixture(scope="module")
def model(model_cache: Path) -> PegsModel:
    return load_checkpoint(DEFAULT_ROOT, overrides={"llm_cache_dir": str(model_cache)}).eval()


@pytest.fixture(scope="module")
def decoder(model: PegsModel, model_cache: Path) -> FastPegsDecoder:
    return FastPegsDecoder.load(model, model_cache)


def test_img_hidden_states_from_logits_match_torch(model: PegsModel,
                                                   decoder: FastPegsDecoder) -> None:
    text = model.tokenizer("I'm so sorry.", add_special_tokens=False).input_ids
    ids = model.tokenizer(model.format_prompt(CHAT), add_special_tokens=False).input_ids \
        + text + list(model.img_token_ids)
    recovered = decoder._block_hidden(ids)
    with torch.no_grad(), model.merged_img_rows():
        out = model.llm(input_ids=torch.tensor([ids]), output_hidden_states=True)
        reference = out.hidden_states[-1][0, -len(model.img_token_ids):]
        k = model.config.num_ret_tokens
        ret = model.ret.text_embed(recovered[None, :k])
        ret_ref = model.ret.text_embed(reference[None, :k])
    assert torch.nn.functional.cosine_similarity(recovered, reference).min() > 0.95
    assert torch.nn.functional.cosine_similarity(ret, ret_ref).item() > 0.99


def test_stickers_come_when_forced_and_never_when_not_allowed(
        model: PegsModel, decoder: FastPegsDecoder) -> None:
    forced, banned = decoder.generate([CHAT, CHAT], allow_sticker=[True, False],
                                      force_sticker=[True, False], max_new_tokens=20,
                                      temperature=0.0)
    assert forced.has_sticker and forced.text_before
    assert forced.ret_embedding.shape == (model.config.ret_dim,)
    assert forced.gen_embeds.shape == (model.config.gen_seq_len, model.config.gen_dim)
    assert forced.ret_embedding.norm().item() == pytest.approx(1.0, abs=1e-3)
    assert not banned.has_sticker and banned.text and "[IMG" not in banned.text
    assert 0 < banned.new_tokens <= 20
    assert forced.new_tokens >= len(model.img_token_ids) + 1


def test_picture_turns_stay_on_torch_and_text_turns_go_fast(
        model: PegsModel, decoder: FastPegsDecoder, library, tmp_path: Path) -> None:
    perception = Perception(emotion=Emotion.sadness, valence=-0.6, confidence=0.9)
    plan = plan_reply(perception)
    messages = build_messages([], "I failed my exam today.", perception, plan)
    bot = PegsReplyModel(model, library, tmp_path, fast=decoder,
                         config=PegsReplyConfig(temperature=0.0, max_new_tokens=16))
    text = ReplyRequest(messages=messages, plan=plan, want_sticker=True, force_sticker=True)
    picture = ReplyRequest(messages=messages, plan=plan, want_sticker=True,
                           force_sticker=True,
                           images=[Image.new("RGBA", (96, 96), (250, 200, 0, 255))])
    calls = []
    original = decoder.generate

    def counted(conversations, **kwargs):  # the real decoder, counting its rows
        calls.append(len(conversations))
        return original(conversations, **kwargs)

    decoder.generate = counted  # type: ignore[method-assign]
    try:
        fast_reply, torch_reply = bot.reply([text, picture])
    finally:
        del decoder.generate
    assert calls == [1]
    assert fast_reply.text and fast_reply.sticker is not None
    assert torch_reply.text and torch_reply.sticker is not None


def test_a_changed_checkpoint_makes_the_copy_stale(model: PegsModel,
                                                   decoder: FastPegsDecoder) -> None:
    assert not decoder.stale()
    lora = next(p for n, p in model.llm.named_parameters() if "lora_B" in n)
    saved = lora.detach().clone()
    with torch.no_grad():
        lora.add_(1e-3)
        try:
            assert decoder.stale()
        finally:
            lora.copy_(saved)
    assert not decoder.stale()


def test_old_copies_are_pruned_but_the_one_in_use_stays(tmp_path: Path) -> None:
    import os

    from engine.pegs.fast import prune

    folders = [tmp_path / f"pegs-{i}-ct2-int8" for i in range(5)]
    for age, folder in enumerate(folders):
        folder.mkdir()
        os.utime(folder, (1000 + age, 1000 + age))  # pegs-4 used most recently
    (tmp_path / "SmolLM2-135M-Instruct.Q4_1-ct2-int8").mkdir()
    prune(tmp_path, keep=folders[0], copies=3)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["SmolLM2-135M-Instruct.Q4_1-ct2-int8", "pegs-0-ct2-int8",
                    "pegs-3-ct2-int8", "pegs-4-ct2-int8"]
