"""Replies from an OpenAI-compatible server (STICKERBOT_REPLY_LLM=openai), against a real
HTTP server on loopback (tests/engine/backends/fake_openai.py) that answers with a real
local model (the tiny Llama; its words are random, which is fine for the plumbing).

Covers: the server gets the prompt the local LLM gets (plan, emotion, history), stickers
by retrieval and by the tool action, retries and token counts, the concurrency limit,
the key (sent, never logged), and the clear errors at start.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.backends import BackendError
from engine.backends.local import LocalBackend
from engine.openai_reply import TOOL_INSTRUCTION, load_openai_reply_model
from engine.perception import Perceiver
from engine.planning import plan_reply
from engine.prompting import build_messages
from engine.reply_model import ReplyRequest
from engine.responder import ConversationState, Responder, load_responder
from engine.settings import EngineSettings
from engine.types import HistoryTurn, UserTurn
from tests.engine.backends.fake_openai import FakeOpenAI
from tests.factories import safety_policy, tiny_llm

KEY = "sk-test-secret-4711"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    local = LocalBackend(tiny_llm(max_positions=4096, max_new_tokens=12))
    fake = FakeOpenAI(local, models=("big-model", "llama3.2:latest"), api_key=KEY)
    yield fake
    fake.close()


@pytest.fixture
def settings(server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EngineSettings:
    monkeypatch.setenv("STICKERBOT_LLM_API_KEY", KEY)
    server.plan.clear()
    server.answer_delay_s = 0.0
    return EngineSettings(data_dir=tmp_path, reply_llm="openai", llm_base_url=server.base_url,
                    llm_model="big-model", llm_concurrency=2, llm_max_retries=2,
                    temperature=0.0, max_new_tokens=12)


def turn(text: str, n: int = 1) -> UserTurn:
    return UserTurn(platform="web", chat_id="c", user_id="u", message_id=f"m{n}", text=text)


def request_for(classifier, library, text: str, *, want: bool = True,
                force: bool = False) -> ReplyRequest:
    perception = Perceiver(classifier, library).perceive(turn(text))
    plan = plan_reply(perception)
    return ReplyRequest(messages=build_messages([], text, perception, plan), plan=plan,
                        want_sticker=want, force_sticker=force)


def test_the_server_gets_the_prompt_the_local_llm_gets(
        settings: EngineSettings, server: FakeOpenAI, classifier, library, index) -> None:
    model = load_openai_reply_model(settings, library, index)
    perceiver = Perceiver(classifier, library)
    responder = Responder(perceiver, model, sticker_rate=1.0,
                          safety=safety_policy(classifier, library, settings.generated_dir))
    history = [HistoryTurn(role="user", text="I had a driving test today"),
               HistoryTurn(role="bot", text="Good luck! Tell me how it went.")]
    text = "I passed my driving test!"
    reply = responder.respond(turn(text), ConversationState(history=history))

    perception = perceiver.perceive(turn(text))
    expected = build_messages(history, text, perception, plan_reply(perception))
    body = server.requests[-1]["body"]
    assert body["messages"] == expected
    assert "They feel happiness" in body["messages"][0]["content"]
    assert body["model"] == "big-model" and body["max_tokens"] == 12
    assert server.requests[-1]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert reply.text and reply.model_version == "openai-big-model+ret"
    assert reply.sticker is not None and reply.sticker.emotion == reply.planned_emotion
    assert library.get(reply.sticker.id)


def test_tool_mode_sends_the_sticker_the_model_asks_for(
        settings: EngineSettings, server: FakeOpenAI, classifier, library, index) -> None:
    model = load_openai_reply_model(settings.model_copy(update={"reply_model": "tool"}),
                                    library, index)
    assert model.version == "openai-big-model+tool"
    server.script("text:Congratulations, you did it! [sticker: a proud happy face]",
                  "text:Well done, you did it!", "text:Well done!", "text:So proud of you!")
    asked = request_for(classifier, library, "I passed my driving test!")
    not_asked = request_for(classifier, library, "I passed my driving test!", want=False)
    # One at a time: a batch's requests go out concurrently, in no fixed order.
    [with_action], [without], [not_allowed] = (model.reply([r])
                                               for r in (asked, asked, not_asked))
    system = [r["body"]["messages"][0]["content"] for r in server.requests[-3:]]
    assert sum(s.endswith(TOOL_INSTRUCTION) for s in system) == 2  # only where allowed
    assert with_action.text == "Congratulations, you did it!"
    assert with_action.sticker is not None
    assert with_action.sticker.emotion in asked.plan.sticker_emotions
    assert without.sticker is None and not_allowed.sticker is None
    # A sticker the frequency control says is overdue comes even without the action.
    [forced] = model.reply([request_for(classifier, library, "I passed my driving test!",
                                        force=True)])
    assert forced.text == "So proud of you!" and forced.sticker is not None


def test_failures_are_retried_and_tokens_counted_and_the_key_never_logged(
        settings: EngineSettings, server: FakeOpenAI, classifier, library, index,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    model = load_openai_reply_model(settings, library, index)
    server.script("429", "broken", "ok")
    [reply] = model.reply([request_for(classifier, library, "My cat is ill")])
    usage = model.llm.backend.usage
    assert reply.text and usage.retries == 2 and usage.failures == 0
    assert usage.prompt_tokens > 20 and usage.completion_tokens == reply.new_tokens > 0
    assert KEY not in caplog.text and KEY not in repr(model.llm.backend)


def test_a_batch_goes_out_concurrently_within_the_limit(
        settings: EngineSettings, server: FakeOpenAI, classifier, library, index) -> None:
    model = load_openai_reply_model(settings.model_copy(update={"reply_model": "text-only"}),
                                    library, index)
    server.max_in_flight = 0
    server.answer_delay_s = 0.2
    server.script(*[f"text:Reply {i}." for i in range(5)])
    requests = [request_for(classifier, library, f"message {i}") for i in range(5)]
    replies = model.reply(requests)
    assert sorted(r.text for r in replies) == [f"Reply {i}." for i in range(5)]
    assert all(r.sticker is None for r in replies)
    assert 1 <= server.max_in_flight <= 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_start_fails_clearly_when_the_server_is_away_refuses_or_lacks_the_model(
        settings: EngineSettings, library, index, monkeypatch: pytest.MonkeyPatch) -> None:
    away = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError, match="cannot reach the LLM server at .*/v1/models"):
        load_openai_reply_model(settings.model_copy(update={"llm_base_url": away}),
                                library, index)
    with pytest.raises(BackendError, match="does not serve the model 'tiny'.*big-model"):
        load_openai_reply_model(settings.model_copy(update={"llm_model": "tiny"}),
                                library, index)
    # Ollama answers "llama3.2" with its "llama3.2:latest".
    tagged = load_openai_reply_model(settings.model_copy(update={"llm_model": "llama3.2"}),
                                     library, index)
    assert tagged.version == "openai-llama3.2+ret"
    with pytest.raises(ValueError, match="needs the local LLM"):
        load_openai_reply_model(settings.model_copy(update={"reply_model": "pegs"}),
                                library, index)
    monkeypatch.setenv("STICKERBOT_LLM_API_KEY", "sk-wrong")
    with pytest.raises(BackendError, match="refused the API key") as refused:
        load_openai_reply_model(settings, library, index)
    assert "sk-wrong" not in str(refused.value)


def test_load_responder_answers_through_the_server(
        settings: EngineSettings, server: FakeOpenAI, pack_root: Path) -> None:
    settings.stickers_dir.symlink_to(pack_root, target_is_directory=True)
    responder = load_responder(settings)
    assert responder.version == "openai-big-model+ret"
    seen = len(server.requests)
    reply = responder.respond(turn("I miss my grandmother so much"))
    assert reply.text and len(server.requests) == seen + 1
