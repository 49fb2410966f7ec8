"""What `stickerbot simulate` and `stickerbot profiles expand` do, built from the settings.

Kept out of stickerbot.py so the command stays a thin argument parser.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.settings import TrainingSettings
from training.simulator.agents import Config
from training.simulator.manager import ManagerConfig
from training.simulator.profiles import SEED_FILE, expand_profiles, load_profiles, save_profiles
from training.simulator.run import SimulationConfig, Simulator
from training.simulator.stats import table, write_report
from training.simulator.tool import DEFAULT_SHARDS, DEFAULT_TOP_K, StickerTool

log = logging.getLogger(__name__)


@dataclass
class SimulateOptions:
    out: Path
    sessions: int = 20
    seed: int = 0
    shards: int = DEFAULT_SHARDS
    top_k: int = DEFAULT_TOP_K
    max_turns: int = 6
    split: str = "train"
    batch_size: int = 4
    backend: str | None = None  # default: the setting llm_backend
    profiles: Path = SEED_FILE
    cache: bool | None = None  # default: the setting llm_cache
    message_tokens: int = 40
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def build_tool(settings: TrainingSettings, shards: int, top_k: int, seed: int) -> StickerTool:
    from engine.embeddings import TextEncoder
    from engine.stickers import StickerIndex, StickerLibrary

    encoder = TextEncoder(settings.embedding_model_path or None)
    library = StickerLibrary.load(settings.stickers_dir)
    index = StickerIndex.load(settings.stickers_dir, library, encoder)
    return StickerTool(library, encoder, shards=shards, top_k=top_k, seed=seed, index=index)


def simulate(settings: TrainingSettings, options: SimulateOptions) -> dict[str, Any]:
    """Run (or resume) a simulation, then write its stats; returns run report + stats."""
    from engine.backends.factory import build_backend, build_escalation

    backend = build_backend(settings, kind=options.backend, cache=options.cache)
    escalation = build_escalation(settings, kind=options.backend, cache=options.cache)
    tool = build_tool(settings, options.shards, options.top_k, options.seed)
    config = SimulationConfig(
        sessions=options.sessions, seed=options.seed, split=options.split,
        batch_size=options.batch_size, agent=Config(message_tokens=options.message_tokens),
        manager=ManagerConfig(max_turns=options.max_turns))
    simulator = Simulator(backend, tool, load_profiles(options.profiles), config,
                          escalation=escalation)
    report = simulator.run(options.out, progress=options.progress)
    stats = write_report(options.out)
    result = {"written": report.written, "skipped": report.skipped,
              "seconds": round(report.seconds, 1),
              "seconds_per_session": round(report.seconds_per_session, 1),
              "shards": len(tool), "usage": report.usage, "stats": stats}
    runs = options.out.with_name(options.out.stem + "-runs.jsonl")
    with runs.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({k: v for k, v in result.items() if k != "stats"}) + "\n")
    print(table(stats))
    print(f"{report.written} sessions written, {report.skipped} already there, "
          f"{report.seconds_per_session:.1f} s per session; stats and plots in "
          f"{Path(stats['plots'][0]).parent}")
    return result


def expand(settings: TrainingSettings, *, out: Path, target: int, seed: int = 0,
           backend: str | None = None, seeds: Path = SEED_FILE) -> dict[str, Any]:
    """SELF-INSTRUCT expansion of the seed profiles to `target`, written to `out`."""
    from engine.backends.factory import build_backend

    profiles, report = expand_profiles(build_backend(settings, kind=backend),
                                       load_profiles(seeds), target, seed=seed)
    save_profiles(profiles, out)
    print(json.dumps(report, indent=2))
    return report
