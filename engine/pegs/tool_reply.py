"""The paper's baselines as reply models: tool learning and text-only fine-tuning.

Tool learning: the LLM (its LoRA trained by the `tool` stage) writes its reply and, when
it wants a sticker, an action `[sticker: <description>]`; the action's description is
searched in the library's text index (MiniLM), the sticker tool. With `use_tool=False`
the same model is the text-only baseline. Neither ever samples an [IMG] token.
"""

from __future__ import annotations

import json

from engine.llm import call_seed
from engine.pegs.model import PegsModel
from engine.pegs.reply import PegsReplyConfig, pegs_messages, reply_text, special_pattern
from engine.reply_model import ModelReply, ReplyRequest, find_action, library_choice
from engine.stickers import StickerIndex, StickerLibrary
from engine.types import StickerChoice


class ToolReplyModel:
    def __init__(self, model: PegsModel, library: StickerLibrary, index: StickerIndex, *,
                 config: PegsReplyConfig | None = None, use_tool: bool = True) -> None:
        self.model = model.eval()
        self.library, self.index = library, index
        self.config = config or PegsReplyConfig()
        self.use_tool = use_tool
        self._special = special_pattern(model)
        checkpoint = getattr(model, "checkpoint_version", None) or "untrained"
        kind = "tool" if use_tool else "text"
        self.version = f"{kind}-{model.config.profile}@{checkpoint}"

    def reply(self, requests: list[ReplyRequest]) -> list[ModelReply]:
        if not requests:
            return []
        token = self.model.config.image_token
        conversations = [pegs_messages(r.messages, len(r.images), token, self._special)
                         for r in requests]
        cfg = self.config
        generations = self.model.generate(
            conversations, [list(r.images) for r in requests], allow_sticker=False,
            max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
            seed=call_seed(cfg.seed, [json.dumps(c) for c in conversations]))
        replies = []
        for request, generation in zip(requests, generations, strict=True):
            text, query = find_action(generation.text_before)
            generation.text_before = text
            sticker = None
            if self.use_tool and query and request.want_sticker:
                sticker = self._search(query, request)
            replies.append(ModelReply(reply_text(generation), sticker, generation.new_tokens))
        return replies

    def _search(self, query: str, request: ReplyRequest) -> StickerChoice | None:
        hits = self.index.search(query, k=1, exclude=request.exclude_sticker_ids)
        if not hits:
            return None
        return library_choice(self.library, *hits[0])
