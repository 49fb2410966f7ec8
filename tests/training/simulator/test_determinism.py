"""Fast simulator checks on the tiny random LLM: determinism, counted fallbacks, the
OpenAI-compatible backend in the loop, and the `stickerbot simulate` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.backends import OpenAIBackend, OpenAIConfig
from engine.backends.local import LocalBackend
from tests.engine.backends.fake_openai import FakeOpenAI
from tests.factories import save_tiny_llm, tiny_llm
from training.simulator.agents import Config
from training.simulator.manager import ManagerConfig
from training.simulator.profiles import load_profiles
from training.simulator.run import SimulationConfig, Simulator
from training.simulator.tool import StickerTool


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_backend() -> LocalBackend:
    return LocalBackend(tiny_llm(max_positions=4096, max_new_tokens=8))


def small_config(seed: int = 0) -> SimulationConfig:
    return SimulationConfig(sessions=2, seed=seed, batch_size=2,
                            agent=Config(message_tokens=8, plan_tokens=8, memory_tokens=8,
                                         max_reasks=1),
                            manager=ManagerConfig(max_turns=2, reply_retries=1))


@pytest.fixture(scope="module")
def tool(library, encoder, index) -> StickerTool:
    return StickerTool(library, encoder, shards=10, top_k=5, index=index)


def conversations(path: Path) -> list[str]:
    return [json.dumps(json.loads(line)["conversation"]) for line in path.read_text()
            .splitlines()]


def test_same_seed_same_sessions_other_seed_other_sessions(tool, tmp_path: Path) -> None:
    runs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp_path / f"{name}.jsonl"
        Simulator(tiny_backend(), tool, load_profiles(), small_config(seed)).run(
            out, progress=False)
        runs.append(out)
    assert runs[0].read_text() == runs[1].read_text()
    assert conversations(runs[0]) != conversations(runs[2])


def test_malformed_plans_fall_back_to_no_sticker_and_are_counted(tool, tmp_path) -> None:
    out = tmp_path / "s.jsonl"
    Simulator(tiny_backend(), tool, load_profiles(), small_config()).run(out, progress=False)
    for line in out.read_text().splitlines():
        record = json.loads(line)
        counters = record["counters"]
        # The random tiny model never writes JSON: every intention fell back, visibly.
        assert counters["fallback_intention"] == 2 * len(record["conversation"])
        assert counters["reasks"] >= counters["fallback_intention"]
        assert all(t["user_sticker"] is None and t["system_sticker"] is None
                   for t in record["conversation"])


def test_the_simulator_runs_on_an_openai_compatible_endpoint(tool, tmp_path) -> None:
    server = FakeOpenAI(tiny_backend())
    backend = OpenAIBackend(OpenAIConfig(base_url=server.base_url, model="tiny",
                                         timeout_s=30, concurrency=2))
    try:
        server.script("500", "429")  # the first calls fail and are retried
        report = Simulator(backend, tool, load_profiles(), small_config()).run(
            tmp_path / "s.jsonl", progress=False)
    finally:
        backend.close()
        server.close()
    assert report.written == 2 and report.usage["retries"] == 2
    assert report.usage["calls"] > 10 and report.usage["completion_tokens"] > 0
    assert len(server.requests) == report.usage["calls"] + 2


def test_stickerbot_simulate_command(pack_root: Path, tmp_path: Path, monkeypatch) -> None:
    import stickerbot

    data = tmp_path / "data"
    data.mkdir()
    (data / "stickers").symlink_to(pack_root)
    monkeypatch.setenv("STICKERBOT_DATA_DIR", str(data))
    monkeypatch.setenv("STICKERBOT_LLM_PATH", save_tiny_llm(tmp_path / "tiny"))
    monkeypatch.setenv("STICKERBOT_MAX_NEW_TOKENS", "8")
    argv = ["simulate", "--sessions", "2", "--max-turns", "2", "--shards", "10",
            "--top-k", "5", "--batch-size", "2"]
    assert stickerbot.main(argv) == 0
    out = data / "simulated" / "sessions.jsonl"
    assert len(out.read_text().splitlines()) == 2
    assert (data / "simulated" / "sessions-stats" / "sticker_emotions.png").exists()
    assert (data / "llm-cache" / "calls.sqlite").exists()
    assert stickerbot.main(argv) == 0  # resumed: nothing new, nothing duplicated
    assert len(out.read_text().splitlines()) == 2
    runs = (data / "simulated" / "sessions-runs.jsonl").read_text().splitlines()
    assert [json.loads(r)["written"] for r in runs] == [2, 0]
