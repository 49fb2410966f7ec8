"""Statistics of simulated sessions, as the STICKERCONV paper's Table 5 and Figure 4.

Table 5: sessions, turns (total and per session), stickers (total and per session),
unique stickers. Figure 4: the emotion distribution of the user's stickers against the
system's. Added here: the manager's and planners' tallies (retries, fallbacks, drops),
so a run shows how often the small model needed help. Plots are PNG (Agg backend).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from engine.types import Emotion


def read_sessions(path: Path) -> list[dict[str, Any]]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def compute_stats(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    turns = [len(s["conversation"]) for s in sessions]
    user_emotions: Counter = Counter()
    system_emotions: Counter = Counter()
    unique: set[str] = set()
    per_session = []
    counters: Counter = Counter()
    for session in sessions:
        count = 0
        for turn in session["conversation"]:
            for key, tally in (("user_sticker", user_emotions),
                               ("system_sticker", system_emotions)):
                sticker = turn.get(key)
                if sticker:
                    count += 1
                    tally[sticker["emotion"]] += 1
                    unique.add(sticker["image"])
        per_session.append(count)
        counters.update(session.get("counters", {}))
    n = len(sessions)
    return {
        "sessions": n,
        "turns": sum(turns),
        "turns_per_session": round(sum(turns) / n, 2) if n else 0.0,
        "max_turns": max(turns, default=0),
        "turns_histogram": {str(k): v for k, v in sorted(Counter(turns).items())},
        "stickers": sum(per_session),
        "stickers_per_session": round(sum(per_session) / n, 2) if n else 0.0,
        "user_stickers": sum(user_emotions.values()),
        "system_stickers": sum(system_emotions.values()),
        "unique_stickers": len(unique),
        "user_sticker_emotions": {e.value: user_emotions.get(e.value, 0) for e in Emotion},
        "system_sticker_emotions": {e.value: system_emotions.get(e.value, 0) for e in Emotion},
        "user_profile_emotions": dict(sorted(Counter(s.get("user_emotion", "?")
                                                     for s in sessions).items())),
        "close_reasons": dict(sorted(Counter(s.get("close_reason", "?")
                                             for s in sessions).items())),
        "counters": dict(sorted(counters.items())),
    }


def table(stats: dict[str, Any]) -> str:
    """Table 5 as plain text."""
    rows = [("Sessions", stats["sessions"]), ("Turns", stats["turns"]),
            ("Avg. turns per session", stats["turns_per_session"]),
            ("Stickers", stats["stickers"]),
            ("Avg. stickers per session", stats["stickers_per_session"]),
            ("User / system stickers", f"{stats['user_stickers']} / "
                                       f"{stats['system_stickers']}"),
            ("Unique stickers", stats["unique_stickers"])]
    return "\n".join(f"{name:<28}{value}" for name, value in rows)


def plot(stats: dict[str, Any], folder: Path) -> list[Path]:
    """Figure 4 (user vs system sticker emotions) and a turns-per-session histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    labels = [e.value for e in Emotion]
    user = [stats["user_sticker_emotions"][e] for e in labels]
    system = [stats["system_sticker_emotions"][e] for e in labels]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, values, title in ((axes[0], user, "user stickers"),
                              (axes[1], system, "system stickers")):
        ax.bar(labels, values, color="#4c72b0" if ax is axes[0] else "#dd8452")
        ax.set_title(f"Emotions of {title} (n={sum(values)})")
        ax.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    emotions_png = folder / "sticker_emotions.png"
    figure.savefig(emotions_png, dpi=100)
    plt.close(figure)

    figure, ax = plt.subplots(figsize=(5, 4))
    histogram = stats["turns_histogram"]
    ax.bar(list(histogram), list(histogram.values()), color="#55a868")
    ax.set_xlabel("turns in the session")
    ax.set_ylabel("sessions")
    ax.set_title(f"Turns per session (mean {stats['turns_per_session']})")
    figure.tight_layout()
    turns_png = folder / "turns_per_session.png"
    figure.savefig(turns_png, dpi=100)
    plt.close(figure)
    return [emotions_png, turns_png]


def write_report(sessions_path: Path, folder: Path | None = None) -> dict[str, Any]:
    """stats.json, table5.txt and the PNGs beside the sessions file (or in `folder`)."""
    sessions_path = Path(sessions_path)
    folder = Path(folder) if folder else sessions_path.with_name(sessions_path.stem + "-stats")
    stats = compute_stats(read_sessions(sessions_path))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    (folder / "table5.txt").write_text(table(stats) + "\n", encoding="utf-8")
    stats["plots"] = [str(p) for p in plot(stats, folder)]
    return stats
