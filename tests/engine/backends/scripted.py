"""A ChatBackend that answers from a script: fast unit tests of what sits on top of backends."""

from __future__ import annotations

from collections.abc import Callable

from engine.backends import ChatResult, Conversation, Usage


class ScriptedBackend:
    name = "scripted"
    model = "script-1"

    def __init__(self, answer: Callable[[Conversation], str] | list[str]) -> None:
        self._answer = answer
        self._queue = list(answer) if isinstance(answer, list) else None
        self.usage = Usage()
        self.calls: list[list[Conversation]] = []

    def complete(self, conversations: list[Conversation], *, max_tokens: int,
                 temperature: float = 0.7, seed: int = 0) -> list[ChatResult]:
        self.calls.append(conversations)
        results = []
        for conversation in conversations:
            if self._queue is not None:
                text = self._queue.pop(0) if self._queue else ""
            else:
                text = self._answer(conversation)  # type: ignore[operator]
            result = ChatResult(text=text, prompt_tokens=sum(len(m["content"].split())
                                                             for m in conversation),
                                completion_tokens=len(text.split()), cost_usd=0.0,
                                backend=self.name, model=self.model)
            self.usage.add(result)
            results.append(result)
        return results
