"""PEGS decoding: [IMG] suppression, forced stickers, text around the sticker."""

from __future__ import annotations

import pytest
import torch

from engine.pegs import PegsModel
from engine.pegs.generation import limit_images
from tests.engine.pegs.pegs_support import images, tiny_pegs, train_reply

CHAT = [{"role": "user", "content": "my dog is sad"}]


@pytest.fixture(scope="module")
def taught() -> PegsModel:
    """A tiny model taught one reply: 'so sorry' [IMG1..4] 'hug .'"""
    model = tiny_pegs()
    train_reply(model, CHAT, f"so sorry {model.sticker_text} hug .")
    return model


def test_model_emits_sticker_and_keeps_text_after_it(taught: PegsModel) -> None:
    cfg = taught.config
    [reply] = taught.generate([CHAT], temperature=0, max_new_tokens=10)
    assert (reply.text_before, reply.text_after) == ("so sorry", "hug .")
    assert reply.ret_embedding.shape == (cfg.ret_dim,)
    assert torch.allclose(reply.ret_embedding.norm(), torch.tensor(1.0))
    assert reply.gen_embeds.shape == (cfg.gen_seq_len, cfg.gen_dim)
    assert reply.new_tokens == 2 + cfg.num_img_tokens + 2 + 1  # text, block, text, stop
    assert reply.text == "so sorry hug ."


def test_generation_matches_forward(taught: PegsModel) -> None:
    """The KV-cached decoding loop yields the same sticker embeddings as one full forward
    over the prompt and the generated reply."""
    [reply] = taught.generate([CHAT], temperature=0, max_new_tokens=10)
    target = f"so sorry {taught.sticker_text} hug ."
    out = taught(**taught.encode([taught.format_prompt(CHAT)], [target]))
    assert torch.allclose(reply.ret_embedding, out.ret_embeddings[0], atol=1e-5)
    assert torch.allclose(reply.gen_embeds, out.gen_embeddings[0], atol=1e-4)


def test_no_sticker_when_not_allowed(taught: PegsModel) -> None:
    for temperature in (0.0, 1.0):
        replies = taught.generate([CHAT, CHAT], allow_sticker=False, max_new_tokens=10,
                                  temperature=temperature, seed=7)
        for reply in replies:
            assert reply.ret_embedding is None and reply.gen_embeds is None
            assert "IMG" not in reply.text_before + reply.text_after
            assert reply.text_after == ""


def test_forced_sticker_on_untrained_model() -> None:
    model = tiny_pegs()
    cfg = model.config
    chats = [[{"role": "user", "content": "hello <image> my cat"}], CHAT]
    replies = model.generate(chats, [images(1), []], force_sticker=True, max_new_tokens=6,
                             temperature=1.0, seed=3)
    for reply in replies:
        assert reply.ret_embedding.shape == (cfg.ret_dim,)
        assert reply.gen_embeds.shape == (cfg.gen_seq_len, cfg.gen_dim)
        assert reply.new_tokens <= 6 + cfg.num_img_tokens + 1
    plain = model.generate(chats, [images(1), []], max_new_tokens=6, allow_sticker=False)
    assert all(not r.has_sticker for r in plain)


def test_same_seed_same_reply(taught: PegsModel) -> None:
    first = taught.generate([CHAT], temperature=1.0, seed=11, max_new_tokens=8)
    second = taught.generate([CHAT], temperature=1.0, seed=11, max_new_tokens=8)
    assert first[0].text == second[0].text


def test_limit_images_keeps_the_latest() -> None:
    pics = images(3)
    text, kept = limit_images("a <image> b <image> c <image> d", pics, "<image>", 2)
    assert text == "a  b <image> c <image> d" and kept == pics[1:]
    with pytest.raises(ValueError):
        limit_images("a <image>", [], "<image>", 2)


def test_generate_leaves_the_model_as_it_was(taught: PegsModel) -> None:
    """Decoding merges the [IMG] rows into the tables for speed; afterwards the tables,
    the outputs and the train/eval mode are exactly as before."""
    batch = taught.encode([taught.format_prompt(CHAT)], [f"so sorry {taught.sticker_text}"])
    weight = taught.llm.get_input_embeddings().token_adapter.base_layer.weight
    before_rows, before = weight.detach().clone(), taught(**batch)
    taught.train()
    taught.generate([CHAT], force_sticker=True, max_new_tokens=4)
    assert taught.training
    taught.eval()
    assert torch.equal(weight, before_rows)
    after = taught(**batch)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.ret_embeddings, after.ret_embeddings)
