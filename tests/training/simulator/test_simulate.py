"""Agent4SC end to end with the real SmolLM2: records, sticker databases, manager rules, resume.

One module-scoped run of 3 short sessions (max 4 turns) feeds every check; the resume
check re-runs it from a torn file with the same call cache, so it costs seconds.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.backends import CachedBackend
from engine.backends.local import LocalBackend
from engine.llm import ChatLLM, LLMConfig
from training.simulator.agents import Config
from training.simulator.format import (
    PUBLISHED_KEYS,
    TURN_KEYS,
    sticker_id_of,
    validate_record,
)
from training.simulator.manager import ManagerConfig
from training.simulator.profiles import load_profiles, rouge_l
from training.simulator.run import SimulationConfig, Simulator, read_done
from training.simulator.stats import write_report
from training.simulator.tool import StickerTool

pytestmark = pytest.mark.slow
MAX_TURNS, MAX_WORDS = 4, 30


def config() -> SimulationConfig:
    return SimulationConfig(
        sessions=3, seed=5, batch_size=3,
        agent=Config(message_tokens=24, plan_tokens=24, memory_tokens=20, max_reasks=1),
        manager=ManagerConfig(max_turns=MAX_TURNS, max_words=MAX_WORDS, reply_retries=1))


@dataclass
class Run:
    out: Path
    records: list[dict]
    tool: StickerTool
    backend: CachedBackend
    seconds_per_session: float


@pytest.fixture(scope="module")
def run(model_cache: Path, library, encoder, index, tmp_path_factory) -> Run:
    folder = tmp_path_factory.mktemp("simulated")
    local = LocalBackend(ChatLLM.load(LLMConfig(cache_dir=model_cache)))
    backend = CachedBackend(local, folder / "calls.sqlite")
    tool = StickerTool(library, encoder, shards=10, top_k=5, index=index)
    out = folder / "sessions.jsonl"
    report = Simulator(backend, tool, load_profiles(), config()).run(out, progress=False)
    print(f"\n[simulate] {report.written} sessions, {report.seconds_per_session:.1f} s each, "
          f"usage {report.usage}")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return Run(out, records, tool, backend, report.seconds_per_session)


def test_records_are_valid_stickerconv_sessions(run: Run) -> None:
    assert [r["session_id"] for r in run.records] == [f"sim-5-{i:06d}" for i in range(3)]
    for record in run.records:
        validate_record(record)
        assert set(PUBLISHED_KEYS) <= set(record)
        assert 1 <= len(record["conversation"]) <= MAX_TURNS
        for number, turn in enumerate(record["conversation"], start=1):
            assert tuple(turn) == TURN_KEYS and turn["turn"] == number
            assert turn["user_message"].strip() and turn["system_message"].strip()
            for key in ("user_sticker", "system_sticker"):
                if turn[key] is not None:
                    assert set(turn[key]) == {"image", "description", "emotion",
                                              "recommendation", "origin_anno"}
        assert record["split"] == "train" and record["shard"] in run.tool.split_shards("train")
        profile = next(p for p in load_profiles() if p.persona == record["user_persona"])
        assert record["user_status"] == profile.situation
        assert record["user_emotion"] == profile.emotion.value


def test_stickers_come_only_from_the_sessions_database(run: Run) -> None:
    sent = 0
    for record in run.records:
        shard = run.tool.shards[record["shard"]]
        plans = {(p["turn"], p["role"]): p for p in record["sticker_plans"]}
        for turn in record["conversation"]:
            for role in ("user", "system"):
                sticker = turn[f"{role}_sticker"]
                if sticker is None:
                    continue
                sent += 1
                sid = sticker_id_of(sticker["image"])
                assert sid in shard.ids
                plan = plans[(turn["turn"], role)]
                assert plan["sticker"] == sid and sid in plan["candidates"]
                assert len(plan["candidates"]) <= run.tool.top_k
                assert sticker["emotion"] == run.tool.library.get(sid).emotion.value
    print(f"[simulate] {sent} stickers sent")


def test_the_managers_rules_held(run: Run) -> None:
    manager = ManagerConfig(max_turns=MAX_TURNS, max_words=MAX_WORDS)
    for record in run.records:
        turns, counters = record["conversation"], record["counters"]
        for role in ("user", "system"):  # no stickers in consecutive turns of one speaker
            flags = [t[f"{role}_sticker"] is not None for t in turns]
            assert not any(a and b for a, b in zip(flags, flags[1:], strict=False)), flags
        earlier: list[str] = []
        for turn in turns:
            for role in ("user", "system"):
                text = turn[f"{role}_message"]
                assert len(text.split()) <= MAX_WORDS
                if any(rouge_l(text, e) >= manager.repeat_rouge_l for e in earlier):
                    assert counters.get("reply_rejected", 0) >= 1  # never silent
                earlier.append(text)
                sticker = turn[f"{role}_sticker"]
                if sticker is not None:  # what was kept fits its context
                    before = turn["user_message"] if role == "system" else (
                        earlier[-2] if len(earlier) > 1 else "")
                    kept = run.tool.library.get(sticker_id_of(sticker["image"]))
                    fit = run.tool.similarity(f"{before} {text}".strip(), kept)
                    assert fit >= manager.sticker_fit - 1e-4
        # Process control: a close check at turn 2; closed by the manager or at max turns.
        assert counters["close_checks"] >= 1
        if record["close_reason"] == "max_turns":
            assert len(turns) == MAX_TURNS
        else:
            assert record["close_reason"] == "manager" and len(turns) % 2 == 0
        planned = counters.get("intention_yes", 0) + counters.get("intention_no", 0) + \
            counters.get("fallback_intention", 0)
        blocked = counters.get("sticker_blocked_consecutive", 0)
        assert planned + blocked == 2 * len(turns)


def test_resume_after_a_torn_write_adds_no_duplicates(run: Run, library, tmp_path) -> None:
    original = run.out.read_text().splitlines(keepends=True)
    out = tmp_path / "sessions.jsonl"
    out.write_text(original[0] + original[1][: len(original[1]) // 2])  # crash mid-line
    assert read_done(out) == {run.records[0]["session_id"]}
    assert out.read_text() == original[0]  # the torn line is gone
    report = Simulator(run.backend, run.tool, load_profiles(), config()).run(out,
                                                                             progress=False)
    assert report.skipped == 1 and report.written == 2
    assert out.read_text().splitlines(keepends=True) == original  # same sessions, once each
    again = Simulator(run.backend, run.tool, load_profiles(), config()).run(out,
                                                                            progress=False)
    assert again.written == 0 and again.skipped == 3
    assert len(out.read_text().splitlines()) == 3


def test_stats_report_and_plots(run: Run, tmp_path: Path) -> None:
    shutil.copy(run.out, tmp_path / "sessions.jsonl")
    stats = write_report(tmp_path / "sessions.jsonl")
    assert stats["sessions"] == 3
    assert stats["turns"] == sum(len(r["conversation"]) for r in run.records)
    assert stats["stickers"] == stats["user_stickers"] + stats["system_stickers"]
    assert sum(stats["user_sticker_emotions"].values()) == stats["user_stickers"]
    folder = tmp_path / "sessions-stats"
    for name in ("stats.json", "table5.txt", "sticker_emotions.png", "turns_per_session.png"):
        assert (folder / name).stat().st_size > 0
    assert (folder / "sticker_emotions.png").read_bytes()[:4] == b"\x89PNG"
