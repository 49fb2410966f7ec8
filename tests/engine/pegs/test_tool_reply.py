"""The baselines as reply models: the tool action becomes a library sticker; text-only
never sends one."""

from __future__ import annotations

import torch

from engine.pegs import PegsConfig, PegsModel
from engine.pegs.reply import PegsReplyConfig
from engine.pegs.tiny import tiny_llm, tiny_tokenizer
from engine.pegs.tool_reply import ToolReplyModel
from engine.planning import plan_reply
from engine.reply_model import ReplyRequest, find_action
from engine.types import Emotion, Perception
from tests.engine.pegs.pegs_support import train_reply

CHAT = [{"role": "user", "content": "i lost my dog today"}]
PLAN = plan_reply(Perception(emotion=Emotion.sadness, valence=-0.8, confidence=0.9))


def test_find_action() -> None:
    assert find_action("so sorry [sticker: a crying face] hugs") == (
        "so sorry   hugs", "a crying face")
    assert find_action("so sorry [ Sticker :sad dog ]")[1] == "sad dog"
    assert find_action("no action here") == ("no action here", None)
    assert find_action("[sticker: ]")[1] is None


def test_the_tool_action_fetches_a_library_sticker(library, index) -> None:
    tokenizer = tiny_tokenizer()
    tokenizer.add_tokens(["[", "]"])  # the word-level vocabulary has no brackets
    torch.manual_seed(0)
    model = PegsModel(PegsConfig.tiny(), tiny_llm(len(tokenizer)), tokenizer)
    train_reply(model, CHAT, "so sorry . [ sticker : sad dog ]")
    config = PegsReplyConfig(temperature=0.0, max_new_tokens=12)
    request = ReplyRequest(messages=CHAT, plan=PLAN, want_sticker=True)
    [reply] = ToolReplyModel(model, library, index, config=config).reply([request])
    assert reply.text == "so sorry ." and reply.sticker is not None
    assert reply.sticker.id == index.search("sad dog", k=1)[0][0].id
    held = ReplyRequest(messages=CHAT, plan=PLAN, want_sticker=False)
    [text_only] = ToolReplyModel(model, library, index, config=config,
                                 use_tool=False).reply([request, held])[:1]
    assert text_only.sticker is None and text_only.text == "so sorry ."
