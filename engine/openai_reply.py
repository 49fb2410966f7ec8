"""Replies written by any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server, a
hosted API), with stickers from the library.

    STICKERBOT_REPLY_LLM=openai  STICKERBOT_LLM_BASE_URL=...  STICKERBOT_LLM_MODEL=...

The server gets exactly the messages the local LLM gets (system prompt with the emotion
guidance and the plan, the recent history, the new turn: `engine.prompting`). The HTTP
side is the simulator's `OpenAIBackend`: timeouts, retries with backoff, a concurrency
limit, token counts, the key read from the environment and never logged.

Stickers: `retrieval` (the default) picks a library sticker of the planned emotion for the
reply's words, as `RetrievalReplyModel` does; `tool` lets the model decide, as the paper's
tool-learning baseline: when a sticker is allowed the system prompt asks it to end with
`[sticker: <description>]`, which is searched in the library (and a sticker the
frequency control says is overdue is retrieved even when it wrote none).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from engine.backends import BackendError, ChatBackend, OpenAIBackend
from engine.llm import Generation, trim_to_sentence
from engine.prompting import clean_reply, fit_messages
from engine.reply_model import (
    TOOL_ACTION,
    ModelReply,
    ReplyModel,
    ReplyRequest,
    RetrievalReplyModel,
    find_action,
)

if TYPE_CHECKING:
    from engine.settings import EngineSettings
    from engine.stickers import StickerIndex, StickerLibrary

log = logging.getLogger(__name__)

# No tokenizer of the remote model here: prompts are bounded by a rough count (3
# characters a token, on the safe side for English), well inside any chat model's context.
REMOTE_PROMPT_TOKENS = 3072
CHARS_PER_TOKEN = 3
TOOL_INSTRUCTION = ("If a sticker would fit your reply, end it with "
                    + TOOL_ACTION.format("<what the sticker shows>") + ".")
STICKER_CHOICES = ("retrieval", "tool", "text-only")


def rough_tokens(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"]) + 8 for m in messages) // CHARS_PER_TOKEN


def cut_chars(text: str, tokens: int) -> str:
    return text[:tokens * CHARS_PER_TOKEN]


class RemoteLLM:
    """A `ChatBackend` with `ChatLLM`'s `generate`: what `RetrievalReplyModel` calls."""

    def __init__(self, backend: ChatBackend, *, max_new_tokens: int = 40,
                 temperature: float = 0.6, seed: int = 0) -> None:
        self.backend = backend
        self.version = f"openai-{backend.model}"
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed

    def generate(self, conversations: list[list[dict[str, str]]], *,
                 max_new_tokens: int | None = None,
                 temperature: float | None = None) -> list[Generation]:
        """One reply per conversation; the backend sends them as concurrent requests."""
        if not conversations:
            return []
        budget = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        fitted = [fit_messages(c, rough_tokens, REMOTE_PROMPT_TOKENS, cut_chars)
                  for c in conversations]
        results = self.backend.complete(
            fitted, max_tokens=budget, seed=self.seed,
            temperature=self.temperature if temperature is None else temperature)
        generations = []
        for result in results:
            text = trim_to_sentence(result.text) if result.finish_reason == "length" \
                else result.text
            generations.append(Generation(text=text, new_tokens=result.completion_tokens,
                                          seconds=result.seconds))
        return generations


class RemoteToolReplyModel(RetrievalReplyModel):
    """The model decides on a sticker by writing `[sticker: <description>]`."""

    def __init__(self, llm: RemoteLLM, library: StickerLibrary, index: StickerIndex) -> None:
        super().__init__(llm, library, index)  # type: ignore[arg-type]
        self.version = f"{llm.version}+tool"

    def reply(self, requests: list[ReplyRequest]) -> list[ModelReply]:
        conversations = [with_tool_instruction(r.messages) if r.want_sticker else r.messages
                         for r in requests]
        generations = self.llm.generate(conversations)
        replies = []
        for request, generation in zip(requests, generations, strict=True):
            text, description = find_action(generation.text)
            text = clean_reply(text)
            sticker = None
            if request.want_sticker and (description or request.force_sticker):
                sticker = self.pick_sticker(request, description or text)
            replies.append(ModelReply(text, sticker, generation.new_tokens))
        return replies


class RemoteTextReplyModel(RetrievalReplyModel):
    """Text from the server, never a sticker."""

    def __init__(self, llm: RemoteLLM, library: StickerLibrary, index: StickerIndex) -> None:
        super().__init__(llm, library, index)  # type: ignore[arg-type]
        self.version = f"{llm.version}+text"

    def pick_sticker(self, request: ReplyRequest, text: str) -> None:
        return None


def with_tool_instruction(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The messages with the sticker action explained at the end of the system prompt."""
    first = messages[0]
    return [{**first, "content": f"{first['content']}\n{TOOL_INSTRUCTION}"}, *messages[1:]]


def check_server(backend: OpenAIBackend) -> None:
    """Fail now, with the reason, when the server cannot be reached, refuses the key or
    does not serve the configured model."""
    listed = backend.list_models()
    model = backend.model
    if listed and model not in listed and f"{model}:latest" not in listed:
        shown = ", ".join(sorted(listed)[:10])
        raise BackendError(f"{backend.config.base_url} does not serve the model {model!r} "
                           f"(setting STICKERBOT_LLM_MODEL); it serves: {shown}")


def load_openai_reply_model(settings: EngineSettings, library: StickerLibrary,
                            index: StickerIndex) -> ReplyModel:
    """The reply model for STICKERBOT_REPLY_LLM=openai, after checking the server."""
    from engine.backends.factory import openai_backend

    choice = {"auto": "retrieval"}.get(settings.reply_model, settings.reply_model)
    if choice not in STICKER_CHOICES:
        raise ValueError(f"STICKERBOT_REPLY_MODEL={settings.reply_model} needs the local LLM "
                         f"(PEGS reads its hidden states); with STICKERBOT_REPLY_LLM=openai "
                         f"choose one of auto, {', '.join(STICKER_CHOICES)}")
    backend = openai_backend(settings)
    check_server(backend)
    llm = RemoteLLM(backend, max_new_tokens=settings.max_new_tokens,
                    temperature=settings.temperature, seed=settings.seed)
    log.info("replies from %r at %s", backend.model, settings.llm_base_url)
    kinds = {"retrieval": RetrievalReplyModel, "tool": RemoteToolReplyModel,
             "text-only": RemoteTextReplyModel}
    return kinds[choice](llm, library, index)  # type: ignore[arg-type]
