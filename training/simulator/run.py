"""The session loop: blocks of sessions simulated in lockstep, written as STICKERCONV JSONL.

Sessions run in fixed blocks of `batch_size` (block b holds sessions b*B .. b*B+B-1), so
each LLM call carries one step of every live session in the block: ~5x the throughput of
one session at a time on the local model. Blocks are fixed by index, so a block is
always simulated with the same partners: a run is deterministic for a seed (and batch
size), and a resumed run re-creates the same sessions.

Resume: every finished session is one JSONL line with a stable id (`sim-<seed>-<index>`),
flushed and fsynced. On start the file's ids are read; a partially written last line is
cut off; sessions already there are skipped, so nothing is duplicated.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from engine.backends import ChatBackend
from training.simulator.agents import (
    Config,
    Session,
    Utterance,
    plan_stickers,
    refresh_memory,
)
from training.simulator.format import session_record
from training.simulator.manager import Manager, ManagerConfig
from training.simulator.profiles import Profile
from training.simulator.tool import StickerTool

log = logging.getLogger(__name__)
ROLES = ("user", "system")


@dataclass
class SimulationConfig:
    sessions: int = 20
    seed: int = 0
    split: str = "train"  # train (first 80 % of the shards), test (last 20 %) or all
    batch_size: int = 4
    memory_every: int = 2  # short-term summaries are refreshed every two turns
    agent: Config = field(default_factory=Config)
    manager: ManagerConfig = field(default_factory=ManagerConfig)


@dataclass
class RunReport:
    written: int = 0
    skipped: int = 0
    seconds: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_session(self) -> float:
        return self.seconds / self.written if self.written else 0.0


def session_id(seed: int, index: int) -> str:
    return f"sim-{seed}-{index:06d}"


def session_seed(seed: int, index: int) -> int:
    return zlib.crc32(f"{seed}:{index}".encode())


def read_done(path: Path) -> set[str]:
    """Ids already written; a torn last line (a crash mid-write) is cut off the file."""
    path = Path(path)
    if not path.exists():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("%s: discarding a partial last line (%d bytes)", path, len(data) - keep)
        with path.open("r+b") as handle:
            handle.truncate(keep)
        data = data[:keep]
    done = set()
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            done.add(json.loads(line)["session_id"])
    return done


def append_record(path: Path, record: dict[str, Any]) -> None:
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class Simulator:
    def __init__(self, backend: ChatBackend, tool: StickerTool, profiles: list[Profile],
                 config: SimulationConfig | None = None,
                 escalation: ChatBackend | None = None) -> None:
        if not profiles:
            raise ValueError("the simulator needs at least one profile")
        self.backend = backend
        self.tool = tool
        self.profiles = profiles
        self.config = config or SimulationConfig()
        self.manager = Manager(backend, tool, config=self.config.manager,
                               agent_config=self.config.agent, escalation=escalation)
        self._order = random.Random(self.config.seed).sample(range(len(profiles)),
                                                             len(profiles))
        self._shards = tool.split_shards(self.config.split)

    def new_session(self, index: int) -> Session:
        """Profile (a seeded shuffle, cycled) and shard (seeded per session) for one index."""
        seed = session_seed(self.config.seed, index)
        shard = random.Random(seed).choice(self._shards)
        profile = self.profiles[self._order[index % len(self.profiles)]]
        return Session(session_id=session_id(self.config.seed, index), index=index,
                       profile=profile, shard=shard, split=self.config.split, seed=seed)

    def run(self, out: Path, *, progress: bool = True) -> RunReport:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        done = read_done(out)
        total = self.config.sessions
        report = RunReport(skipped=sum(session_id(self.config.seed, i) in done
                                       for i in range(total)))
        started = time.perf_counter()
        bar = tqdm(total=total, initial=report.skipped, unit="session", desc="simulating",
                   disable=not progress)
        size = max(1, self.config.batch_size)
        for start in range(0, total, size):
            block = [self.new_session(i) for i in range(start, min(total, start + size))]
            if all(s.session_id in done for s in block):
                continue
            plans = self.run_block(block)
            for session in block:
                if session.session_id in done:
                    continue
                append_record(out, session_record(session, self.backend.model,
                                                  plans[session.session_id]))
                done.add(session.session_id)
                report.written += 1
                bar.update(1)
        bar.close()
        report.seconds = time.perf_counter() - started
        report.usage = self.backend.usage.as_dict()
        return report

    def run_block(self, block: list[Session]) -> dict[str, list[dict[str, Any]]]:
        """Simulate sessions in lockstep until each is closed; returns their sticker plans."""
        traces: dict[str, list[dict[str, Any]]] = {s.session_id: [] for s in block}
        base = self.config.seed * 1_000_003 + block[0].index * 1009
        active = list(block)
        while active:
            turn = active[0].turns + 1  # lockstep: every live session is on this turn
            for step, role in enumerate(ROLES):
                seed = base + turn * 100 + step * 10
                texts = self.manager.write_replies(role, active, seed=seed)
                allowed = [n for n, s in enumerate(active)
                           if self.manager.may_send_sticker(s, role)]
                items = [(active[n], texts[n]) for n in allowed]
                plans = plan_stickers(self.backend, self.tool, items, self.config.agent,
                                      seed=seed + 3)
                plans = self.manager.check_stickers(items, plans)
                chosen = {n: plan for n, plan in zip(allowed, plans, strict=True)}
                for n, session in enumerate(active):
                    plan = chosen.get(n)
                    sticker = plan.sticker if plan else None
                    session.utterances.append(Utterance(role, texts[n], sticker,
                                                        plan.reason if plan else ""))
                    if plan and sticker is not None:
                        traces[session.session_id].append({
                            "turn": turn, "role": role, "intention": plan.intention,
                            "query": plan.query, "candidates": plan.candidates,
                            "sticker": sticker.id, "reason": plan.reason})
            for session in active:
                session.turns = turn
            self.manager.close_finished(active, seed=base + turn * 100 + 50)
            active = [s for s in active if not s.closed]
            due = [s for s in active if s.turns % self.config.memory_every == 0]
            refresh_memory(self.backend, due, self.config.agent, seed=base + turn * 100 + 60)
        return traces
