"""Build the crisis classifier's known lines and choose its weight and thresholds.

    python -m training.safety.calibrate [--model-dir engine/safety/crisis_model]

The known lines (engine.safety.known_lines) are the training split's turns embedded by
the plain MiniLM. Their weight and the two thresholds are chosen on turns no weight
and no known line came from: the validation split's ordinary turns (everyday and hard
negatives: they bound the false alarms) and the calibration set
(`crisis_calibration_turns.jsonl`, by a writer the model never saw: its negatives bound
the false alarms too, its risk lines measure recall on new wording). For each pair of
weights (the crisis margin's in the crisis score, the risk margin's in the concern),
`crisis` is the lowest threshold within the bounds on all three groups, `check_in` the
same for check-ins; the pair kept is the one whose crisis replies catch the most
calibration risk lines, and then whose crisis replies or check-ins do. Writes
known_lines.npz and the thresholds into the model's config.json, with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from engine.embeddings import TextEncoder
from engine.safety.crisis import (
    CRISIS_LABELS,
    DEFAULT_MODEL_DIR,
    KNOWN_LINES_FILE,
    LABELS,
    CrisisClassifier,
    Thresholds,
    known_text,
)
from engine.safety.known_lines import KnownLines
from engine.safety.phrases import explicit_risk
from training.safety.data import (
    CALIBRATION_PATH,
    LabelledTurn,
    in_validation,
    load_all_train_turns,
    load_train_turns,
)
from training.safety.train import (
    MAX_FALSE_CHECK_IN,
    MAX_FALSE_CHECK_IN_HARD,
    MAX_FALSE_CRISIS,
    MAX_FALSE_CRISIS_HARD,
    is_everyday,
    lowest_threshold,
)

WEIGHTS = (0.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0)  # tried for each margin
# The calibration set's negatives all share the surface of risk lines (harder than the
# hard negatives of the validation split): held to the hard-negative target of issue 17.
MAX_FALSE_CRISIS_CALIBRATION = 0.01
MAX_FALSE_CHECK_IN_CALIBRATION = 0.04


def known_lines(encoder: TextEncoder, turns: list[LabelledTurn]) -> KnownLines:
    labels = np.array([LABELS.index(t.label) for t in turns], dtype=np.uint8)
    return KnownLines(encoder.encode([t.text for t in turns]), labels)


def choose(scores: np.ndarray, groups: list[tuple[np.ndarray, float]]) -> float:
    """The lowest threshold on `scores` within each group's bound on its false alarms."""
    return max(lowest_threshold(scores[mask], bound, cap=None) for mask, bound in groups)


def caught(candidate: dict) -> tuple[float, float]:
    """What a candidate is judged by: clear risk by the new writer that gets the crisis
    reply, then any of its risk that gets the crisis reply or the check-in."""
    figures = candidate["figures"]
    return (figures["calibration clear risk: crisis reply"],
            figures["calibration risk: crisis or check-in"])


def calibrate(classifier: CrisisClassifier, turns: list[LabelledTurn],
              weights: tuple[float, ...] = WEIGHTS) -> dict:
    """The weights and thresholds that catch the most calibration risk lines within the
    bounds (`caught`), the figures of their decision, and every pair of weights tried
    ("tried"): one weight for the crisis margin, one for the risk margin."""
    probs = classifier.probabilities([t.pair for t in turns])
    margins = classifier.known_margins([known_text(t.context, t.text) for t in turns])
    risk_margin = np.array([m.risk for m in margins])
    crisis_margin = np.array([m.crisis for m in margins])
    named = [explicit_risk(t.text) for t in turns]
    labels = np.array([t.label for t in turns])
    held = np.array([t.source == CALIBRATION_PATH.name for t in turns])
    ordinary = labels == "none"
    everyday = ordinary & ~held & np.array([is_everyday(t) for t in turns])
    hard = ordinary & ~held & ~everyday
    new_negative, new_risk = ordinary & held, ~ordinary & held
    clear = np.isin(labels, list(CRISIS_LABELS)) & held
    tried: list[dict] = []
    for weight, weight_check_in in itertools.product(weights, weights):
        crisis_score = probs[:, 2] + probs[:, 3] + weight * crisis_margin
        concern = 1.0 - probs[:, 0] + weight_check_in * risk_margin
        thresholds = Thresholds(
            crisis=choose(crisis_score, [(everyday, MAX_FALSE_CRISIS),
                                         (hard, MAX_FALSE_CRISIS_HARD),
                                         (new_negative, MAX_FALSE_CRISIS_CALIBRATION)]),
            check_in=choose(concern, [(everyday, MAX_FALSE_CRISIS + MAX_FALSE_CHECK_IN),
                                      (hard, MAX_FALSE_CRISIS_HARD + MAX_FALSE_CHECK_IN_HARD),
                                      (new_negative, MAX_FALSE_CRISIS_CALIBRATION
                                       + MAX_FALSE_CHECK_IN_CALIBRATION)]),
            known_weight=weight, known_weight_check_in=weight_check_in)
        classifier.thresholds = thresholds
        verdicts = [classifier.verdict(row, phrase, margin)
                    for row, phrase, margin in zip(probs, named, margins, strict=True)]
        crisis = np.array([v.is_crisis for v in verdicts])
        flagged = crisis | np.array([v.check_in for v in verdicts])
        figures = {
            "false crisis (everyday)": float(crisis[everyday].mean()),
            "false crisis (hard)": float(crisis[hard].mean()),
            "false crisis (calibration negatives)": float(crisis[new_negative].mean()),
            "false crisis or check-in (calibration negatives)":
                float(flagged[new_negative].mean()),
            "calibration clear risk: crisis reply": float(crisis[clear].mean()),
            "calibration risk: crisis or check-in": float(flagged[new_risk].mean()),
        }
        print(f"weights {weight}/{weight_check_in}: crisis {thresholds.crisis:.3f}, check-in "
              f"{thresholds.check_in:.3f}; " + ", ".join(f"{k} {v:.3f}"
                                                        for k, v in figures.items()))
        tried.append({"thresholds": thresholds, "figures": figures})
    best = max(tried, key=caught)
    classifier.thresholds = best["thresholds"]
    return {**best, "tried": tried}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)

    encoder = TextEncoder()
    train_turns = load_all_train_turns()
    bank = [t for t in train_turns if not in_validation(t) and t.text.strip()]
    held = [t for t in train_turns if in_validation(t)] + load_train_turns(CALIBRATION_PATH)
    print(f"known lines: {len(bank)}; calibration turns: {len(held)}")
    known = known_lines(encoder, bank)
    classifier = CrisisClassifier.load(encoder.model_path, args.model_dir, encoder)
    classifier.known = known  # the new lines, not those saved by an earlier run
    best = calibrate(classifier, held)
    thresholds: Thresholds = best["thresholds"]
    print(f"kept weights {thresholds.known_weight}/{thresholds.known_weight_check_in}: "
          f"{best['figures']}")
    known.save(args.model_dir / KNOWN_LINES_FILE)
    config_path = args.model_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["thresholds"] = {"crisis": thresholds.crisis, "check_in": thresholds.check_in,
                            "known_weight": thresholds.known_weight,
                            "known_weight_check_in": thresholds.known_weight_check_in}
    config["known_lines"] = {"lines": len(bank), "k": known.k,
                             "calibration_turns": len(held), **best["figures"]}
    config_path.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    print(f"saved {args.model_dir / KNOWN_LINES_FILE} and the thresholds")


if __name__ == "__main__":
    main()
