"""The local Hugging Face model (default SmolLM2-135M) behind the ChatBackend interface.

It wraps `engine.llm.ChatLLM`, which already batches with left padding and seeds each
call from its input, so the same batch always gets the same replies.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from engine.backends.base import BackendError, ChatResult, Conversation, Usage
from engine.llm import ChatLLM, LLMConfig


class LocalBackend:
    """Batched generation on this machine; tokens are counted, cost is zero."""

    name = "local"

    def __init__(self, llm: ChatLLM, *, max_batch: int = 8) -> None:
        self.llm = llm
        self.model = llm.version
        self.max_batch = max_batch
        self.usage = Usage()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config: LLMConfig, *, max_batch: int = 8) -> LocalBackend:
        return cls(ChatLLM.load(config), max_batch=max_batch)

    def prompt_tokens(self, conversation: Conversation) -> int:
        ids = self.llm.tokenizer.apply_chat_template(conversation, tokenize=True,
                                                     add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # BatchEncoding in some versions
            ids = ids["input_ids"]
        return len(ids)

    def complete(self, conversations: list[Conversation], *, max_tokens: int,
                 temperature: float = 0.7, seed: int = 0) -> list[ChatResult]:
        results: list[ChatResult] = []
        for start in range(0, len(conversations), self.max_batch):
            results.extend(self._batch(conversations[start:start + self.max_batch],
                                       max_tokens, temperature, seed))
        return results

    def _batch(self, batch: list[Conversation], max_tokens: int, temperature: float,
               seed: int) -> list[ChatResult]:
        with self._lock:
            # ChatLLM seeds each call from its config's seed and the prompts; the caller's
            # seed replaces the configured one for this call only.
            original = self.llm.config
            self.llm.config = dataclasses.replace(original, seed=seed)
            started = time.perf_counter()
            try:
                generations = self.llm.generate(batch, max_new_tokens=max_tokens,
                                                temperature=temperature)
            except (RuntimeError, ValueError) as error:
                self.usage.count(failures=len(batch))
                raise BackendError(f"local generation failed: {error}") from error
            finally:
                self.llm.config = original
            seconds = (time.perf_counter() - started) / max(1, len(batch))
        results = []
        for conversation, generation in zip(batch, generations, strict=True):
            result = ChatResult(
                text=generation.text, prompt_tokens=self.prompt_tokens(conversation),
                completion_tokens=generation.new_tokens, cost_usd=0.0, backend=self.name,
                model=self.model, seconds=seconds,
                finish_reason="length" if generation.new_tokens >= max_tokens else "stop")
            self.usage.add(result)
            results.append(result)
        return results
