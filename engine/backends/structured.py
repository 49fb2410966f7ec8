"""Structured outputs: JSON pulled out of model text, validated, re-asked a bounded number of times.

Small models wrap JSON in prose or code fences, use single quotes, or answer with a bare
word. `extract_json` finds the first JSON object in the text; a caller's `lenient`
parser may map other text to a dict (for "yes"/"no" answers). What still fails schema
validation is asked again with the validation error fed back, at most `max_reasks`
times; then the result says so (`value is None`) and the caller applies its documented
default. Nothing here raises on a malformed answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from engine.backends.base import BackendError, ChatBackend, Conversation

T = TypeVar("T", bound=BaseModel)
Lenient = Callable[[str], dict[str, Any] | None]

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _balanced_objects(text: str) -> list[str]:
    """Every top-level {...} span, in order (braces inside strings respected)."""
    spans, depth, start, in_string, escaped = [], 0, -1, False, False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"' and depth:
            in_string = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                spans.append(text[start:i + 1])
    return spans


def extract_json(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text`, tolerating fences, prose and single quotes."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        for span in _balanced_objects(candidate):
            for attempt in (span, span.replace("'", '"'), re.sub(r",\s*}", "}", span)):
                try:
                    value = json.loads(attempt)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    return value
    return None


def format_hint(schema: type[BaseModel]) -> str:
    """A one-line description of the wanted object, e.g. {"use_sticker": boolean, ...}."""
    props = schema.model_json_schema().get("properties", {})
    fields = ", ".join(f'"{name}": {spec.get("type", "value")}' for name, spec in props.items())
    return "{" + fields + "}"


@dataclass
class Structured(Generic[T]):
    """One structured answer: the value, or None when every attempt failed."""

    value: T | None
    attempts: int
    errors: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.value is not None


def parse(text: str, schema: type[T], lenient: Lenient | None = None) -> tuple[T | None, str]:
    """(value, "") or (None, why): JSON first, then the lenient reading."""
    data = extract_json(text)
    if data is None and lenient is not None:
        data = lenient(text)
    if data is None:
        return None, "no JSON object found"
    try:
        return schema.model_validate(data), ""
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "object"
        return None, f"{where}: {first.get('msg', 'invalid')}"


def complete_structured(backend: ChatBackend, conversations: list[Conversation],
                        schema: type[T], *, max_tokens: int, temperature: float = 0.3,
                        seed: int = 0, max_reasks: int = 2, lenient: Lenient | None = None
                        ) -> list[Structured[T]]:
    """Ask each conversation for a `schema` object; re-ask only the ones that failed.

    A re-ask appends the bad answer and the validation error, so the model sees what to
    fix. Backend failures count as a failed attempt (no exception escapes).
    """
    results = [Structured[T](value=None, attempts=0) for _ in conversations]
    pending = list(range(len(conversations)))
    current = [list(c) for c in conversations]
    hint = format_hint(schema)
    for _round in range(max_reasks + 1):
        if not pending:
            break
        try:
            replies = backend.complete([current[i] for i in pending], max_tokens=max_tokens,
                                       temperature=temperature, seed=seed + _round)
        except BackendError as error:
            for i in pending:
                results[i].attempts += 1
                results[i].errors.append(f"backend: {error}")
            continue
        still = []
        for i, reply in zip(pending, replies, strict=True):
            item = results[i]
            item.attempts += 1
            item.raw.append(reply.text)
            item.completion_tokens += reply.completion_tokens
            value, why = parse(reply.text, schema, lenient)
            if value is not None:
                item.value = value
                continue
            item.errors.append(why)
            current[i] = current[i] + [
                {"role": "assistant", "content": reply.text[:300]},
                {"role": "user", "content": f"That answer was invalid ({why}). Reply with only "
                                            f"one JSON object like {hint}."},
            ]
            still.append(i)
        pending = still
    return results
