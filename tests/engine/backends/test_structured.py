"""Structured outputs: JSON extraction, schema validation, bounded re-asks with the error."""

from __future__ import annotations

from pydantic import BaseModel, Field

from engine.backends import complete_structured, extract_json, format_hint, parse
from tests.engine.backends.scripted import ScriptedBackend


class Choice(BaseModel):
    index: int = Field(ge=0)
    reason: str = ""


def test_extract_json_tolerates_prose_fences_quotes_and_trailing_commas() -> None:
    assert extract_json('Sure! {"index": 2, "reason": "fits"} hope it helps') == {
        "index": 2, "reason": "fits"}
    assert extract_json('```json\n{"index": 1}\n```') == {"index": 1}
    assert extract_json("{'index': 3}") == {"index": 3}
    assert extract_json('{"index": 4,}') == {"index": 4}
    assert extract_json('{"a": "a } inside", "b": {"c": 1}}') == {"a": "a } inside",
                                                                  "b": {"c": 1}}
    assert extract_json("no json here") is None
    assert extract_json('{"index": ') is None


def test_parse_reports_why_and_lenient_fallback_reads_bare_answers() -> None:
    value, why = parse('{"index": -1}', Choice)
    assert value is None and "index" in why
    value, why = parse("number 2", Choice, lenient=lambda t: {"index": int(t.split()[-1])})
    assert value == Choice(index=2) and why == ""
    assert format_hint(Choice) == '{"index": integer, "reason": string}'


def test_reasks_are_bounded_and_carry_the_validation_error() -> None:
    backend = ScriptedBackend(["I pick the second one", '{"index": -3}', '{"index": 1}'])
    [result] = complete_structured(backend, [[{"role": "user", "content": "pick"}]], Choice,
                                   max_tokens=10, max_reasks=2)
    assert result.value == Choice(index=1)
    assert result.attempts == 3
    assert result.errors == ["no JSON object found", "index: Input should be greater than or "
                                                     "equal to 0"]
    last_prompt = backend.calls[-1][0]
    assert last_prompt[-2] == {"role": "assistant", "content": '{"index": -3}'}
    assert "greater than or equal to 0" in last_prompt[-1]["content"]


def test_exhausted_reasks_give_none_and_only_failures_are_asked_again() -> None:
    backend = ScriptedBackend(lambda conv: '{"index": 0}' if "good" in conv[0]["content"]
                              else "nope")
    good, bad = complete_structured(
        backend, [[{"role": "user", "content": "good"}], [{"role": "user", "content": "bad"}]],
        Choice, max_tokens=10, max_reasks=1)
    assert good.ok and good.attempts == 1
    assert not bad.ok and bad.attempts == 2 and bad.raw == ["nope", "nope"]
    assert [len(batch) for batch in backend.calls] == [2, 1]
