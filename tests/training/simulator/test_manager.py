"""The manager's rules on scripted models: retries, escalation, clipping, stickers, closing."""

from __future__ import annotations

import pytest

from tests.engine.backends.scripted import ScriptedBackend
from training.simulator.agents import Session, StickerPlan, Utterance
from training.simulator.manager import Manager, ManagerConfig
from training.simulator.profiles import load_profiles
from training.simulator.tool import StickerTool


@pytest.fixture(scope="module")
def tool(library, encoder, index) -> StickerTool:
    return StickerTool(library, encoder, shards=10, top_k=5, index=index)


def session(tool: StickerTool, *lines: str) -> Session:
    s = Session(session_id="t", index=0, profile=load_profiles()[25], shard=2, split="train",
                seed=0)
    for n, line in enumerate(lines):
        s.utterances.append(Utterance("user" if n % 2 == 0 else "system", line))
    return s


def test_repeats_are_retried_then_escalated_to_the_stronger_model(tool) -> None:
    old = "My dog died this morning and I miss him so much."
    weak = ScriptedBackend(lambda conv: old)
    strong = ScriptedBackend(lambda conv: "That is so sad; tell me about him.")
    manager = Manager(weak, tool, config=ManagerConfig(reply_retries=2, escalate_after=1),
                      escalation=strong)
    s = session(tool, old)
    [reply] = manager.write_replies("system", [s], seed=0)
    assert reply == "That is so sad; tell me about him."
    assert len(weak.calls) == 1 and len(strong.calls) == 1
    assert s.counters["reply_repeat"] == 1 and s.counters["reply_escalations"] == 1
    # The retry told the model what went wrong, in its system prompt.
    assert "never repeat" in strong.calls[0][0][0]["content"]


def test_a_reply_failing_every_retry_is_clipped_and_counted(tool) -> None:
    long = " ".join(["word"] * 80)
    manager = Manager(ScriptedBackend(lambda conv: long), tool,
                      config=ManagerConfig(max_words=20, reply_retries=2))
    s = session(tool, "hello there")
    [reply] = manager.write_replies("system", [s], seed=0)
    assert len(reply.split()) == 20
    assert s.counters["reply_too_long"] == 3 and s.counters["reply_rejected"] == 1
    empty = session(tool, "hi")
    [fallback] = Manager(ScriptedBackend(lambda conv: ""), tool).write_replies(
        "user", [empty], seed=0)
    assert fallback and empty.counters["reply_empty"] == 3


def test_no_consecutive_stickers_and_unfitting_stickers_dropped(tool) -> None:
    s = session(tool, "I won a trip to Japan!")
    s.utterances[-1].sticker = tool.shards[2].stickers[0]
    message = "Wow, congratulations, that is amazing news!"
    context = f"I won a trip to Japan! {message}"
    ranked = sorted(tool.shards[2].stickers, key=lambda x: tool.similarity(context, x))
    unfitting, fitting = ranked[0], ranked[-1]
    middle = (tool.similarity(context, fitting) + tool.similarity(context, unfitting)) / 2
    manager = Manager(ScriptedBackend([]), tool, config=ManagerConfig(sticker_fit=middle))
    assert not manager.may_send_sticker(s, "user") and manager.may_send_sticker(s, "system")
    assert s.counters["sticker_blocked_consecutive"] == 1
    kept, dropped = manager.check_stickers([(s, message), (s, message)],
                                           [StickerPlan(fitting), StickerPlan(unfitting)])
    assert kept.sticker == fitting and dropped.sticker is None
    assert s.counters["sticker_dropped_context"] == 1
    outsider = next(x for x in tool.library if x.id not in tool.shards[2].ids)
    with pytest.raises(AssertionError):
        manager.check_stickers([(s, message)], [StickerPlan(outsider)])


def test_close_checks_every_two_turns_and_at_max_turns(tool) -> None:
    backend = ScriptedBackend(lambda conv: '{"close": true, "reason": "done"}')
    manager = Manager(backend, tool, config=ManagerConfig(max_turns=6))
    sessions = [session(tool, "a", "b") for _ in range(4)]
    for s, turns in zip(sessions, (1, 2, 3, 6), strict=True):
        s.turns = turns
    manager.close_finished(sessions, seed=0)
    assert [s.closed for s in sessions] == [False, True, False, True]
    assert [s.close_reason for s in sessions] == ["", "manager", "", "max_turns"]
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 1
    unsure = session(tool, "a", "b")
    unsure.turns = 4
    Manager(ScriptedBackend(lambda conv: "maybe"), tool).close_finished([unsure], seed=0)
    assert not unsure.closed and unsure.counters["fallback_close"] == 1
