"""Build the danger bank (engine.safety.danger.DangerLines) and choose its threshold.

    python -m training.safety.danger_lines [--model-dir engine/safety/crisis_model]

The bank is the training split of danger_train_turns.jsonl (danger lines, label 1, and
their look-alikes, 0), embedded by the plain MiniLM; the crisis classifier's known
lines, beside it in the model folder, count as further negatives when a turn is scored.
The threshold is the lowest margin within two bounds on lines the bank does not hold:
the danger file's validation look-alikes (MAX_FALSE_LOOK_ALIKE: lines written to share
the words of danger, harder than any hard negative) and every turn of the crisis
validation split and calibration set, ordinary talk and risk to oneself alike
(MAX_FALSE_OTHER: the bank must not take a self-harm line or an everyday one for danger
from someone else). Writes danger_lines.npz and the
figures (recall on the validation danger lines) into the model's config.json.
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import numpy as np

from engine.embeddings import TextEncoder
from engine.safety.crisis import DEFAULT_MODEL_DIR, KNOWN_LINES_FILE
from engine.safety.danger import DANGER_LINES_FILE, DangerLines, in_danger
from engine.safety.known_lines import KnownLines
from training.safety.data import (
    CALIBRATION_PATH,
    DANGER_TRAIN_PATH,
    in_validation,
    load_all_train_turns,
    load_danger_train,
    load_train_turns,
)
from training.safety.train import lowest_threshold

MAX_FALSE_LOOK_ALIKE = 0.03
MAX_FALSE_OTHER = 0.002
VALIDATION_EVERY = 5  # one line in five, by a hash of its id


def split(items: list[dict]) -> tuple[list[dict], list[dict]]:
    """(training, validation) lines of the danger file, fixed by their ids."""
    held = [zlib.crc32(item["id"].encode()) % VALIDATION_EVERY == 0 for item in items]
    return ([i for i, h in zip(items, held, strict=True) if not h],
            [i for i, h in zip(items, held, strict=True) if h])


def build(encoder: TextEncoder, known: KnownLines | None,
          path: Path = DANGER_TRAIN_PATH) -> tuple[DangerLines, dict]:
    train, validation = split(load_danger_train(path))
    labels = np.array([item["label"] == "danger" for item in train], dtype=np.uint8)
    bank = DangerLines(encoder.encode([item["text"] for item in train]), labels, 0.0)
    others = known.vectors if known is not None else None
    held_danger = [i["text"] for i in validation if i["label"] == "danger"]
    look_alikes = [i["text"] for i in validation if i["label"] != "danger"]
    crisis_held = [t.text for t in load_all_train_turns() if in_validation(t)]
    crisis_held += [t.text for t in load_train_turns(CALIBRATION_PATH)]
    crisis_held = [t for t in crisis_held if len(t.split()) >= 4]

    def margins(texts: list[str]) -> np.ndarray:
        return bank.margins(encoder.encode(texts), others)

    danger_m, look_m, other_m = margins(held_danger), margins(look_alikes), margins(crisis_held)
    bank.threshold = max(lowest_threshold(look_m, MAX_FALSE_LOOK_ALIKE, cap=None),
                         lowest_threshold(other_m, MAX_FALSE_OTHER, cap=None))
    named = np.array([in_danger(t) is not None for t in held_danger])
    figures = {
        "bank lines": len(train), "bank danger lines": int(labels.sum()),
        "threshold": bank.threshold,
        "validation danger lines": len(held_danger),
        "validation: named by the patterns": float(named.mean()),
        "validation: similar to the bank": float((danger_m >= bank.threshold).mean()),
        "validation: either": float((named | (danger_m >= bank.threshold)).mean()),
        "validation look-alikes": len(look_alikes),
        "false (look-alikes)": float((look_m >= bank.threshold).mean()),
        "crisis validation and calibration turns": len(crisis_held),
        "false (those turns)": float((other_m >= bank.threshold).mean()),
    }
    return bank, figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)
    encoder = TextEncoder()
    known_path = args.model_dir / KNOWN_LINES_FILE
    known = KnownLines.load(known_path) if known_path.exists() else None
    bank, figures = build(encoder, known)
    for key, value in figures.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    bank.save(args.model_dir / DANGER_LINES_FILE)
    config_path = args.model_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["danger_lines"] = figures
    config_path.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    print(f"saved {args.model_dir / DANGER_LINES_FILE}")


if __name__ == "__main__":
    main()
