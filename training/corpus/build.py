"""Build StickerBot's own empathetic dialogue corpus from the written parts.

    python -m training.corpus.build [--check-duplicates]

Reads training/corpus/raw/*.jsonl (dialogues as written: user and bot text, stickers as
emoji of the default library, a reason per bot sticker) and writes train / validation /
test files in the STICKERCONV format that training.data reads, plus stats.json. The
split is 80/10/10 by a hash of the persona (every dialogue has its own persona): no
person is in two splits, every situation lands in each at about those shares, and a
dialogue keeps its split when more are written. With
--check-duplicates, MiniLM compares every validation and test turn with the training
turns; a dialogue holding a near-duplicate (cosine >= 0.95 or equal once squashed) is
moved to train, so the held-out splits stay unseen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from itertools import accumulate
from pathlib import Path
from typing import Any

from engine.stickers.build import DEFAULT_PACK, default_pack_entries
from engine.stickers.render import emoji_id

ROOT = Path(__file__).parent
RAW_DIR = ROOT / "raw"
SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))


def library_by_emoji() -> dict[str, dict[str, Any]]:
    return {entry["emoji"]: entry for entry in default_pack_entries()}


def sticker_object(emoji: str | None, reason: str | None,
                   library: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """A STICKERCONV sticker object naming a default-library sticker."""
    if not emoji:
        return None
    entry = library.get(emoji)
    if entry is None:
        raise ValueError(f"{emoji!r} is not a default-library sticker")
    return {"image": f"{DEFAULT_PACK}/{emoji_id(emoji)}.png",
            "description": entry["content_description"], "emotion": entry["emotion"],
            "recommendation": entry["recommendation"], "origin_anno": reason or ""}


def to_session(dialogue: dict[str, Any], split: str,
               library: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "conversation": [
            {"turn": n, "user_message": t["user"],
             "user_sticker": sticker_object(t.get("user_sticker"), None, library),
             "system_message": t["bot"],
             "system_sticker": sticker_object(t.get("bot_sticker"), t.get("sticker_reason"),
                                              library)}
            for n, t in enumerate(dialogue["turns"], start=1)],
        "session_id": dialogue["id"], "situation": dialogue["situation"],
        "user_emotion": dialogue["emotion"], "user_persona": dialogue.get("persona_note", ""),
        "persona": dialogue["persona"], "style": dialogue.get("style", ""), "split": split,
    }


def assign_splits(dialogues: list[dict[str, Any]]) -> dict[str, str]:
    """Dialogue id -> split, by a hash of its persona against the 80/10/10 edges: a
    dialogue keeps its split when others are added, so the test split stays unseen."""
    splits: dict[str, str] = {}
    for d in dialogues:
        share = int.from_bytes(hashlib.sha256(d["persona"].encode()).digest()[:4],
                               "big") / 2**32
        edges = accumulate(part for _, part in SPLITS)
        splits[d["id"]] = next((name for (name, _), edge in zip(SPLITS, edges, strict=True)
                                if share < edge), SPLITS[-1][0])
    return splits


def read_raw(raw_dir: Path = RAW_DIR) -> list[dict[str, Any]]:
    dialogues = []
    for path in sorted(raw_dir.glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            dialogues += [json.loads(line) for line in fh if line.strip()]
    ids = Counter(d["id"] for d in dialogues)
    personas = Counter(d["persona"] for d in dialogues)
    if max(ids.values(), default=1) > 1 or max(personas.values(), default=1) > 1:
        raise ValueError("dialogue ids and personas must be unique")
    return dialogues


def turns_of(dialogue: dict[str, Any]) -> list[str]:
    return [t[k] for t in dialogue["turns"] for k in ("user", "bot") if t[k].strip()]


def move_near_duplicates(dialogues: list[dict[str, Any]], splits: dict[str, str]) -> int:
    """Move held-out dialogues with a turn that repeats a training turn into train."""
    import numpy as np

    from engine.embeddings import TextEncoder
    from training.emotion.dataset import NEAR_DUPLICATE_COSINE, _squash

    def long_turns(d: dict[str, Any]) -> list[str]:
        return [t for t in turns_of(d) if len(t.split()) >= 4]  # "lol" may repeat anywhere

    encoder = TextEncoder()
    train = [t for d in dialogues if splits[d["id"]] == "train" for t in long_turns(d)]
    squashed = {_squash(t) for t in train}
    train_vectors = encoder.encode(train)
    moved = 0
    for d in dialogues:
        mine = long_turns(d)
        if splits[d["id"]] == "train" or not mine:
            continue
        similar = (encoder.encode(mine) @ train_vectors.T).max(axis=1)
        if np.any(similar >= NEAR_DUPLICATE_COSINE) or any(_squash(t) in squashed
                                                           for t in mine):
            splits[d["id"]] = "train"
            moved += 1
    return moved


def stats(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    bot = [t for s in sessions for t in s["conversation"]]
    stickered = [t for t in bot if t["system_sticker"]]
    first = [s["conversation"][0] for s in sessions]
    top = Counter(t["system_sticker"]["image"] for t in stickered).most_common(1)
    return {
        "dialogues": len(sessions), "bot_turns": len(bot),
        "user_sticker_only_turns": sum(1 for t in bot if t["user_sticker"]
                                       and not t["user_message"].strip()),
        "sticker_rate": round(len(stickered) / max(len(bot), 1), 3),
        "first_turn_sticker_rate": round(sum(1 for t in first if t["system_sticker"])
                                         / max(len(first), 1), 3),
        "distinct_stickers": len({t["system_sticker"]["image"] for t in stickered}),
        "top_sticker_share": round(top[0][1] / len(stickered), 3) if top else 0.0,
        "emotions": dict(Counter(s["user_emotion"] for s in sessions).most_common()),
        "situations": dict(Counter(s["situation"] for s in sessions).most_common()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check-duplicates", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT)
    args = parser.parse_args(argv)

    library = library_by_emoji()
    dialogues = read_raw()
    splits = assign_splits(dialogues)
    if args.check_duplicates:
        print(f"held-out dialogues moved to train (near-duplicate turns): "
              f"{move_near_duplicates(dialogues, splits)}")
    report = {}
    for name, _ in SPLITS:
        sessions = [to_session(d, name, library) for d in dialogues if splits[d["id"]] == name]
        with open(args.out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(s, ensure_ascii=False) + "\n" for s in sessions)
        report[name] = stats(sessions)
        print(f"{name}: {report[name]['dialogues']} dialogues, "
              f"{report[name]['bot_turns']} bot turns")
    report["all"] = stats([to_session(d, splits[d["id"]], library) for d in dialogues])
    (args.out / "stats.json").write_text(json.dumps(report, indent=1, ensure_ascii=False)
                                         + "\n", encoding="utf-8")
    print(json.dumps(report["all"], ensure_ascii=False))


if __name__ == "__main__":
    main()
