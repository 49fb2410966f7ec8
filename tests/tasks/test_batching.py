"""Batched serving: turns of different chats answered together, each chat in order, each
turn exactly once (the embedded server; tests/tasks/test_worker.py has the worker)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import select

from engine.reply_model import RetrievalReplyModel
from engine.types import Emotion, Reply, UserTurn
from settings import Settings
from storage.models import Conversation, Message
from tasks.batching import TurnBatcher
from tasks.runtime import Runtime, init_runtime, reset_runtime
from tasks.submit import TurnSubmitter
from tests.factories import tiny_responder

# Long enough never to be what closes a batch that is meant to fill up.
LONG_WINDOW_MS = 20_000


def turn(chat: str, n: int, text: str = "I had such a long day") -> UserTurn:
    return UserTurn(platform="web", chat_id=chat, user_id=chat, message_id=f"m{n}",
                    text=f"{text} ({chat} {n})")


# --- the batcher alone --------------------------------------------------------------------
class Recorder:
    """An `answer` that remembers each batch it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail

    def __call__(self, turns: list[UserTurn]) -> list[Reply]:
        self.batches.append([t.task_id for t in turns])
        if self.fail:
            raise ConnectionError("database away")
        return [Reply(text=f"re {t.text}", user_emotion=Emotion.neutral, user_valence=0.0,
                      planned_emotion=Emotion.neutral) for t in turns]


def test_ready_turns_of_different_chats_go_in_one_batch_up_to_the_size() -> None:
    answer = Recorder()
    batcher = TurnBatcher(answer, size=3, window_s=LONG_WINDOW_MS / 1000)
    try:
        futures = [batcher.submit(turn(f"c{i}", 0)) for i in range(5)]
        replies = [f.result(timeout=60) for f in futures[:3]]
    finally:  # the other two are still waiting for company when it closes
        batcher.close()
    assert answer.batches[0] == [f"web:c{i}:m0" for i in range(3)]
    assert [r.text for r in replies] == [f"re I had such a long day (c{i} 0)" for i in range(3)]


def test_a_chat_waits_for_its_earlier_turn_and_keeps_its_order() -> None:
    answer = Recorder()
    batcher = TurnBatcher(answer, size=8, window_s=0.05)
    try:
        futures = [batcher.submit(t) for t in (turn("a", 0), turn("a", 1), turn("b", 0),
                                               turn("a", 2))]
        for future in futures:
            future.result(timeout=60)
    finally:
        batcher.close()
    assert answer.batches[0] == ["web:a:m0", "web:b:m0"]
    assert answer.batches[1:] == [["web:a:m1"], ["web:a:m2"]]


def test_a_failed_batch_fails_each_of_its_turns_and_later_batches_go_on() -> None:
    answer = Recorder(fail=True)
    batcher = TurnBatcher(answer, size=2, window_s=LONG_WINDOW_MS / 1000)
    try:
        failed = [batcher.submit(turn(c, 0)) for c in ("a", "b")]
        for future in failed:
            with pytest.raises(ConnectionError):
                future.result(timeout=60)
        answer.fail = False
        later = [batcher.submit(turn(c, 1)) for c in ("a", "b")]
        assert all(f.result(timeout=60).text for f in later)
    finally:
        batcher.close()


# --- the embedded server: TurnSubmitter -> batcher -> runtime -> database -------------------
class CountingModel(RetrievalReplyModel):
    """The real retrieval model (tiny LLM), remembering each call's requests."""

    def __init__(self, inner: RetrievalReplyModel) -> None:
        super().__init__(inner.llm, inner.library, inner.index)
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def reply(self, requests):
        with self._lock:
            self.calls.append([r.messages[-1]["content"] for r in requests])
        return super().reply(requests)


@pytest.fixture
def embedded(classifier, library, index, tmp_path):
    responder = tiny_responder(classifier, library, index)
    responder.model = CountingModel(responder.model)
    settings = Settings(data_dir=tmp_path, batch_size=4, batch_window_ms=LONG_WINDOW_MS)
    reset_runtime()
    runtime = init_runtime(settings, responder)
    submitter = TurnSubmitter(settings)
    yield submitter, runtime, responder.model
    submitter.close()
    reset_runtime()


def stored(runtime: Runtime, chat: str) -> list[tuple[str, str]]:
    with runtime.db.session() as s:
        rows = s.execute(select(Message.role, Message.platform_message_id)
                         .join(Conversation, Conversation.id == Message.conversation_id)
                         .where(Conversation.chat_id == chat).order_by(Message.id)).all()
    return [(role, mid) for role, mid in rows]


async def submit_all(submitter: TurnSubmitter, turns: list[UserTurn]) -> list[Reply]:
    return await asyncio.gather(*(submitter.submit(t) for t in turns))


def test_four_chats_writing_at_once_are_answered_by_one_generation(embedded) -> None:
    submitter, runtime, model = embedded
    chats = [f"chat{i}" for i in range(4)]
    replies = asyncio.run(submit_all(submitter, [turn(c, 0) for c in chats]))
    assert all(r.text for r in replies)
    assert len(model.calls) == 1 and len(model.calls[0]) == 4
    for chat in chats:
        assert stored(runtime, chat) == [("user", "m0"), ("bot", "m0")]


def test_a_fast_typist_is_answered_in_order_each_reply_seeing_the_last(embedded) -> None:
    submitter, runtime, model = embedded
    # Three messages of one chat and one of another, all at once (the window is short
    # here so that the lone later turns need not wait for company).
    submitter._batcher.window_s = 0.05
    turns = [turn("typist", n) for n in range(3)] + [turn("other", 0)]
    replies = asyncio.run(submit_all(submitter, turns))
    assert stored(runtime, "typist") == [(role, f"m{n}") for n in range(3)
                                         for role in ("user", "bot")]
    # Each later turn was generated after the earlier reply was stored, and saw it.
    history = runtime.memory.recent("web", "typist", "typist", 12)
    assert [t.text for t in history if t.role == "bot"] == [r.text for r in replies[:3]]
    assert all(sum("(typist" in text for text in call) <= 1 for call in model.calls)


def test_a_turn_sent_three_times_is_answered_once(embedded) -> None:
    submitter, runtime, model = embedded
    submitter._batcher.window_s = 0.05
    again = [turn("twice", 0), turn("twice", 0), turn("elsewhere", 0), turn("twice", 0)]
    replies = asyncio.run(submit_all(submitter, again))
    later = asyncio.run(submit_all(submitter, [turn("twice", 0)]))[0]
    assert stored(runtime, "twice") == [("user", "m0"), ("bot", "m0")]
    assert {r.text for r in (replies[0], replies[1], replies[3], later)} == {replies[0].text}
    asked = [text for call in model.calls for text in call if "(twice 0)" in text]
    assert len(asked) == 1
