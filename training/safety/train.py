"""Fine-tune the crisis classifier and choose its two thresholds.

    python -m training.safety.train [--out engine/safety/crisis_model] [--epochs 4]

LoRA on MiniLM plus a linear head (engine.safety.crisis) learn the four classes from
the labelled turns of training/safety/data, the earlier lines and the user turns of
the dialogue corpus's train split (all ordinary), 85 % of them; the other 15 % (a fixed
split by text hash) and the corpus's validation split choose the thresholds. Real chat is almost all
ordinary turns, so a threshold is judged by its false alarms on the ordinary
validation turns first: `crisis` is the lowest threshold whose false crisis replies
stay within --max-false-crisis of everyday turns and 0.8 % of hard negatives,
`check_in` the lowest whose extra check-ins stay within --max-false-check-in and 3 %.
The validation figures printed are the whole decision's: the
model with engine.safety.phrases beside it. The evaluation sets are never read here.
Then `python -m training.safety.calibrate` adds the known lines and chooses the
weights and thresholds the bot serves with.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from engine.embeddings import default_minilm_path
from engine.safety.crisis import (
    ASKED_PHRASES,
    CRISIS_LABELS,
    DEFAULT_MODEL_DIR,
    KNOWN_LINES_FILE,
    LABELS,
    CrisisModel,
    build_model,
)
from engine.safety.phrases import explicit_risk
from training.safety.data import (
    CORPUS_DIR,
    LEGACY_PATHS,
    TRAIN_PATHS,
    LabelledTurn,
    in_validation,
    load_all_train_turns,
)

SEED = 0
LORA_RANK = 8
TUNED_LAYERS = 6
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
DEFAULT_EPOCHS = 4
# False crisis replies and false check-ins allowed on ordinary validation turns, and on
# the hard negatives (idioms, dark jokes, grief, films, ...), which real chat holds far
# fewer of than the data does: each group is held to its own bound, as the targets are.
MAX_FALSE_CRISIS = 0.002
MAX_FALSE_CHECK_IN = 0.01
MAX_FALSE_CRISIS_HARD = 0.008
MAX_FALSE_CHECK_IN_HARD = 0.03
# Categories of everyday lines; every other category of an ordinary line is a hard
# negative (written to look like risk).
EVERYDAY_CATEGORIES = frozenset({
    "corpus", "everyday", "everyday_mixed", "everyday_typos", "everyday_nonnative",
    "smalltalk", "joy", "happy", "pride", "logistics", "sadness", "fear", "surprise",
    "disgust", "boredom", "anger_everyday"})


def is_everyday(turn: LabelledTurn) -> bool:
    return turn.category in EVERYDAY_CATEGORIES or turn.category.startswith("emotion:")


def class_weights(turns: list[LabelledTurn]) -> torch.Tensor:
    """Inverse square-root frequency: the rare classes count more, not overwhelmingly."""
    counts = np.array([sum(t.label == label for t in turns) for label in LABELS], float)
    weights = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def fit(model: CrisisModel, tokenizer, turns: list[LabelledTurn], epochs: int,
        log_every: int = 20) -> list[float]:
    """AdamW over LoRA and the head with a linear decay; returns the loss per step."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    params = [p for n, p in model.named_parameters() if "lora_" in n or n.startswith("head.")]
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name or name.startswith("head."))
    print(f"  training {sum(p.numel() for p in params):,} parameters", flush=True)
    optimiser = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=0.01)
    steps = epochs * ((len(turns) + BATCH_SIZE - 1) // BATCH_SIZE)
    schedule = get_linear_schedule_with_warmup(optimiser, steps // 20, steps)
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights(turns))
    index = {label: i for i, label in enumerate(LABELS)}
    losses: list[float] = []
    model.train()
    started = time.perf_counter()
    for epoch in range(epochs):
        order = list(range(len(turns)))
        rng.shuffle(order)
        for start in range(0, len(order), BATCH_SIZE):
            batch = [turns[i] for i in order[start:start + BATCH_SIZE]]
            inputs = model.encode(tokenizer, [t.pair for t in batch])
            target = torch.tensor([index[t.label] for t in batch])
            loss = loss_fn(model(**inputs), target)
            loss.backward()
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            losses.append(loss.item())
            if len(losses) % log_every == 0:
                print(f"  epoch {epoch + 1} step {len(losses)}/{steps} loss "
                      f"{np.mean(losses[-log_every:]):.4f} "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
    model.eval()
    return losses


def lowest_threshold(scores: np.ndarray, max_rate: float, cap: float | None = 0.99) -> float:
    """The lowest threshold whose share of `scores` at or above it is within max_rate
    (scores: the ordinary turns' risk scores), at most `cap` (None: no cap, for scores
    that known-lines margins lift past 1)."""
    allowed = int(np.floor(max_rate * len(scores)))
    ranked = np.sort(scores)[::-1]
    # Above the (allowed+1)-th highest ordinary score, at most `allowed` ordinary turns fire.
    edge = ranked[allowed] if allowed < len(ranked) else 0.0
    threshold = float(np.nextafter(np.float32(edge), np.float32(np.inf)))
    return threshold if cap is None else min(threshold, cap)


def choose_thresholds(probs: np.ndarray, turns: list[LabelledTurn], max_false_crisis: float,
                      max_false_check_in: float) -> dict[str, float]:
    """The lowest thresholds within the bounds on everyday and on hard-negative turns."""
    everyday = np.array([t.label == "none" and is_everyday(t) for t in turns])
    hard = np.array([t.label == "none" and not is_everyday(t) for t in turns])
    crisis_score = probs[:, 2] + probs[:, 3]
    concern = 1.0 - probs[:, 0]
    crisis = max(lowest_threshold(crisis_score[everyday], max_false_crisis),
                 lowest_threshold(crisis_score[hard], MAX_FALSE_CRISIS_HARD))
    check_in = max(lowest_threshold(concern[everyday], max_false_crisis + max_false_check_in),
                   lowest_threshold(concern[hard], MAX_FALSE_CRISIS_HARD
                                    + MAX_FALSE_CHECK_IN_HARD))
    return {"crisis": crisis, "check_in": check_in}


def validation_report(probs: np.ndarray, turns: list[LabelledTurn],
                      thresholds: dict[str, float]) -> dict[str, float]:
    named = [explicit_risk(t.text) for t in turns]
    crisis = (np.array([n in CRISIS_LABELS for n in named])
              | (probs[:, 2] + probs[:, 3] >= thresholds["crisis"]))
    asked = ~crisis & (np.array([n in ASKED_PHRASES for n in named])
                       | (1.0 - probs[:, 0] >= thresholds["check_in"]))
    labels = np.array([t.label for t in turns])
    everyday = np.array([t.label == "none" and is_everyday(t) for t in turns])
    hard = np.array([t.label == "none" and not is_everyday(t) for t in turns])
    report = {"everyday turns": int(everyday.sum()),
              "false crisis": float(crisis[everyday].mean()),
              "false check-in": float(asked[everyday].mean()),
              "hard negatives": int(hard.sum()),
              "false crisis (hard)": float(crisis[hard].mean()),
              "false check-in (hard)": float(asked[hard].mean())}
    for label in LABELS[1:]:
        mask = labels == label
        report[f"{label} n"] = int(mask.sum())
        report[f"{label} crisis reply"] = float(crisis[mask].mean()) if mask.any() else 0.0
        report[f"{label} crisis or check-in"] = (float((crisis | asked)[mask].mean())
                                                 if mask.any() else 0.0)
    return report


def data_hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--max-false-crisis", type=float, default=MAX_FALSE_CRISIS)
    parser.add_argument("--max-false-check-in", type=float, default=MAX_FALSE_CHECK_IN)
    parser.add_argument("--thresholds-only", action="store_true",
                        help="keep the weights in --out; choose the thresholds again")
    args = parser.parse_args(argv)

    turns = load_all_train_turns()
    train = [t for t in turns if not in_validation(t)]
    valid = [t for t in turns if in_validation(t)]
    for name, part in (("train", train), ("validation", valid)):
        counts = ", ".join(f"{label} {sum(t.label == label for t in part)}" for label in LABELS)
        print(f"{name}: {len(part)} turns ({counts})")

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, tokenizer = build_model(default_minilm_path(), lora_rank=LORA_RANK,
                                   tuned_layers=TUNED_LAYERS)
    started = time.perf_counter()
    if args.thresholds_only:
        model.load_trained(args.out / "weights.safetensors")
        earlier = json.loads((args.out / "config.json").read_text(encoding="utf-8"))
        losses, seconds = [earlier["final_loss"]], earlier["train_seconds"]
        args.epochs = earlier["epochs"]
    else:
        losses = fit(model, tokenizer, train, args.epochs)
        seconds = time.perf_counter() - started
    probs = model.eval().predict(tokenizer, [t.pair for t in valid])
    thresholds = choose_thresholds(probs, valid, args.max_false_crisis,
                                   args.max_false_check_in)
    report = validation_report(probs, valid, thresholds)
    print(f"trained in {seconds:.0f} s; thresholds {thresholds}")
    for key, value in report.items():
        print(f"  validation {key}: {value:.4f}" if isinstance(value, float)
              else f"  validation {key}: {value}")

    args.out.mkdir(parents=True, exist_ok=True)
    save_file(model.trained_state(), str(args.out / "weights.safetensors"))
    config = {
        "lora_rank": LORA_RANK, "tuned_layers": TUNED_LAYERS, "labels": list(LABELS),
        "thresholds": thresholds,
        "epochs": args.epochs, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
        "seed": SEED, "train_turns": len(train), "validation_turns": len(valid),
        "max_false_crisis": args.max_false_crisis,
        "max_false_check_in": args.max_false_check_in,
        "data_sha256": data_hash([*TRAIN_PATHS,
            *LEGACY_PATHS, CORPUS_DIR / "train.jsonl", CORPUS_DIR / "validation.jsonl"]),
        "train_seconds": round(seconds), "final_loss": float(np.mean(losses[-20:])),
        "validation": report,
    }
    (args.out / "config.json").write_text(json.dumps(config, indent=1) + "\n",
                                          encoding="utf-8")
    # Known lines calibrated for other weights would be read with these thresholds.
    (args.out / KNOWN_LINES_FILE).unlink(missing_ok=True)
    print(f"saved {args.out}; next: python -m training.safety.calibrate --model-dir "
          f"{args.out}")


if __name__ == "__main__":
    main()
