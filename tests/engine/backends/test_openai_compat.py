"""The OpenAI-compatible backend against a local fake server that serves the real SmolLM2.

Covers token counts and cost, retries with backoff on 500/429/timeouts/broken bodies,
giving up, the concurrency limit, structured outputs re-asked after malformed JSON,
and the API key: sent as a bearer token, never logged, never cached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from engine.backends import (
    BackendError,
    CachedBackend,
    OpenAIBackend,
    OpenAIConfig,
    Price,
    complete_structured,
)
from engine.backends.local import LocalBackend
from engine.llm import ChatLLM, LLMConfig
from tests.engine.backends.fake_openai import FakeOpenAI

pytestmark = pytest.mark.slow
HELLO = [{"role": "user", "content": "Say hello to my cat."}]


@pytest.fixture(scope="module")
def local(model_cache: Path) -> LocalBackend:
    return LocalBackend(ChatLLM.load(LLMConfig(cache_dir=model_cache, max_new_tokens=12)))


@pytest.fixture(scope="module")
def server(local: LocalBackend) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(local, slow_s=1.0)
    yield fake
    fake.close()


@pytest.fixture
def client(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIBackend]:
    monkeypatch.setenv("STICKERBOT_LLM_API_KEY", "sk-test-secret")
    server.plan.clear()
    backend = OpenAIBackend(OpenAIConfig(
        base_url=server.base_url, model="smollm2", timeout_s=60, max_retries=2,
        backoff_s=0.01, concurrency=2, price=Price(100.0, 200.0)))
    yield backend
    backend.close()


@pytest.fixture
def impatient(server: FakeOpenAI) -> Iterator[OpenAIBackend]:
    """A client whose timeout the server's "slow" answers outlast."""
    backend = OpenAIBackend(OpenAIConfig(base_url=server.base_url, model="smollm2",
                                         timeout_s=0.5, max_retries=1, backoff_s=0.01))
    yield backend
    backend.close()


def test_a_completion_counts_tokens_and_cost_and_sends_the_key(
        client: OpenAIBackend, server: FakeOpenAI, local: LocalBackend) -> None:
    [result] = client.complete([HELLO], max_tokens=12, temperature=0.0)
    [direct] = local.complete([HELLO], max_tokens=12, temperature=0.0)
    assert result.text == direct.text and result.text
    assert result.prompt_tokens == direct.prompt_tokens > 5
    assert 0 < result.completion_tokens <= 12
    assert result.cost_usd == pytest.approx((result.prompt_tokens * 100
                                             + result.completion_tokens * 200) / 1e6)
    assert client.usage.calls == 1 and client.usage.completion_tokens == result.completion_tokens
    request = server.requests[-1]
    assert request["headers"]["Authorization"] == "Bearer sk-test-secret"
    assert request["body"]["max_tokens"] == 12 and request["body"]["model"] == "smollm2"
    assert "sk-test-secret" not in repr(client)


def test_server_errors_rate_limits_and_broken_bodies_are_retried(
        client: OpenAIBackend, server: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for failure in ("500", "429", "broken"):
        server.script(failure, "ok")
        [result] = client.complete([HELLO], max_tokens=6, temperature=0.0)
        assert result.text
    assert client.usage.retries == 3 and client.usage.failures == 0
    assert "sk-test-secret" not in caplog.text


def test_an_answer_slower_than_the_timeout_is_retried(
        impatient: OpenAIBackend, server: FakeOpenAI) -> None:
    server.script("slow", "text:finally")
    [result] = impatient.complete([HELLO], max_tokens=6)
    assert result.text == "finally" and impatient.usage.retries == 1


def test_it_gives_up_after_the_retries_with_a_backend_error(
        client: OpenAIBackend, server: FakeOpenAI) -> None:
    server.script("500", "500", "500")
    with pytest.raises(BackendError, match="gave up after 3 tries"):
        client.complete([HELLO], max_tokens=6)
    assert client.usage.failures == 1


def test_a_batch_runs_concurrently_but_within_the_limit(
        client: OpenAIBackend, server: FakeOpenAI) -> None:
    deadline = time.monotonic() + 5
    while server.in_flight and time.monotonic() < deadline:  # a slow answer still asleep
        time.sleep(0.05)
    server.max_in_flight = 0
    server.script(*["text:ok"] * 6)
    server.answer_delay_s = 0.2
    try:
        results = client.complete([HELLO] * 6, max_tokens=4)
    finally:
        server.answer_delay_s = 0.0
    assert [r.text for r in results] == ["ok"] * 6
    assert server.max_in_flight == 2


class Mood(BaseModel):
    emotion: str
    score: int


def test_structured_output_is_reasked_after_malformed_json_then_cached(
        client: OpenAIBackend, server: FakeOpenAI, tmp_path: Path) -> None:
    server.script('text:{"emotion": "joy", "score": ', 'text:{"emotion": "joy"}',
                  'text:Here: {"emotion": "joy", "score": 3}')
    cached = CachedBackend(client, tmp_path / "calls.sqlite")
    ask = [[{"role": "user", "content": "How does 'I won!' feel? JSON please."}]]
    [result] = complete_structured(cached, ask, Mood, max_tokens=20, max_reasks=2)
    assert result.value == Mood(emotion="joy", score=3) and result.attempts == 3
    assert "no JSON object found" in result.errors[0] and "score" in result.errors[1]
    # The malformed answers were fed back to the model in the re-asks.
    assert server.requests[-1]["body"]["messages"][-2]["content"] == '{"emotion": "joy"}'
    seen = len(server.requests)
    [again] = complete_structured(cached, ask, Mood, max_tokens=20, max_reasks=2)
    assert again.value == result.value and len(server.requests) == seen  # all from disk
    assert b"sk-test-secret" not in (tmp_path / "calls.sqlite").read_bytes()
