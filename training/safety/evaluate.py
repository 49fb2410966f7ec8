"""How often the bot answers ordinary chat as a crisis, and how often it misses one.

    stickerbot evaluate-safety [--out DIR] [--serve URL [--ordinary-sample N]]

Reads the evaluation sets of training/safety/data, which no training or threshold
choice sees (the near-duplicate check against the training lines runs first), and
decides each turn exactly as the responder does: the classifier on the turn and the two
turns before it, then engine.safety.policy (a turn right after the bot asked "are you
thinking of hurting yourself?" is read as the answer). Sticker-only turns go through
real perception: the platform's emoji and set name, and every sticker of the library.

Printed and written to DIR (safety.json, safety.md, safety.png):
- false alarms on ordinary turns: crisis replies and check-ins, overall, for the hard
  negatives by kind, and for stickers alone;
- recall per risk level: the crisis reply, and the crisis reply or a check-in;
- what those rates mean at realistic base rates (crises are well under 1 % of turns).

With --serve, the same turns also go through a running `stickerbot serve` (the web
chat API), one conversation per web-chat identity, and the rates are printed for the
replies that came back (training/safety/serve_check.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.safety.check_in import SafetyState
from engine.safety.crisis import CrisisClassifier, context_input, crisis_input
from engine.safety.policy import CONTEXT_TURNS, SafetyPolicy
from engine.safety.resources import DANGER
from engine.types import Media, MediaKind, UserTurn
from training.emotion.dataset import overlaps
from training.safety.danger_eval import format_danger, summarise_danger
from training.safety.data import (
    SITTINGS,
    UNUSED_TRAIN_PATHS,
    EvalTurn,
    load_all_train_turns,
    load_corpus_ordinary,
    load_danger,
    load_danger_train,
    load_ordinary,
    load_risk,
    load_train_turns,
)
from training.settings import TrainingSettings

# The levels whose recall targets count the crisis reply only, and those for which a
# check-in is the right answer too.
CRISIS_LEVELS = ("active_thoughts", "method", "intent", "plan", "preparation",
                 "others_no_plan", "others_plan", "self_harm")
CHECK_IN_LEVELS = ("wish_dead", "past_attempt")
BASE_RATES = (0.001, 0.005, 0.01)
# A written reply in place of the model's: on an ordinary turn, either is a false alarm.
WRITTEN = ("crisis", "danger")
# A bot turn in the context that asks the check-in question: the turn answers it.
ASKED = re.compile(r"(hurt(ing)?|harm(ing)?|kill(ing)?) (yourself|someone|anyone|him|her|them)"
                   r"|suicid|end(ing)? your life|taking your (own )?life", re.I)


@dataclass
class Outcome:
    turn: EvalTurn
    action: str  # reply | check_in | crisis | danger (the written reply for danger from others)
    score: float
    concern: float


@dataclass
class SafetyReport:
    ordinary: dict[str, dict[str, float]] = field(default_factory=dict)
    risk: dict[str, dict[str, float]] = field(default_factory=dict)
    context_negatives: dict[str, float] = field(default_factory=dict)
    sittings: dict[str, dict[str, float]] = field(default_factory=dict)
    base_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    overlaps: int = 0
    false_alarms: list[dict[str, str]] = field(default_factory=list)
    misses: list[dict[str, str]] = field(default_factory=list)
    danger: dict = field(default_factory=dict)  # training.safety.danger_eval


def library_sticker_turns(library) -> list[EvalTurn]:
    """Every default-library sticker sent alone."""
    return [EvalTurn([], "", "none", "library sticker", {"library_id": s.id, "name": s.name},
                     f"library-{s.id}", "library") for s in library]


def sticker_media(sticker: dict) -> Media:
    return Media(kind=MediaKind.sticker, path="", format="webp",
                 emoji=sticker.get("emoji") or None,
                 set_name=sticker.get("set_name") or sticker.get("name") or None,
                 library_id=sticker.get("library_id"))


def decide(policy: SafetyPolicy, perceiver, turns: list[EvalTurn]) -> list[Outcome]:
    """The responder's decision for each turn, from its text, sticker and context."""
    assert policy.crisis is not None
    pairs, states, users = [], [], []
    for t in turns:
        user = UserTurn(platform="eval", chat_id="c", user_id="u", message_id="m",
                        text=t.text, media=[sticker_media(t.sticker)] if t.sticker else [])
        descriptions = perceiver.perceive(user).media_descriptions if t.sticker else []
        pairs.append((context_input(t.context[-CONTEXT_TURNS:]),
                      crisis_input(t.text, descriptions)))
        asked = bool(t.context) and t.context[-1][0] == "bot" and ASKED.search(t.context[-1][1])
        target = "others" if asked and re.search(r"someone|anyone|him|her|them",
                                                 t.context[-1][1], re.I) else "self"
        states.append(SafetyState(target if asked else None, 0 if asked else None))
        users.append(user)
    assessments = policy.crisis.assess_pairs(pairs)
    return [Outcome(t, "danger" if d.label == DANGER else d.action, a.score, a.concern)
            for t, d, a in zip(turns, (policy.decide_turn(u, a, s) for u, a, s in zip(
                users, assessments, states, strict=True)), assessments, strict=True)]


def rates(outcomes: list[Outcome]) -> dict[str, float]:
    """False alarms: crisis replies (the danger reply included) and check-ins."""
    n = len(outcomes)
    crisis = sum(o.action in WRITTEN for o in outcomes)
    asked = sum(o.action == "check_in" for o in outcomes)
    return {"n": n, "crisis": crisis / max(n, 1), "check_in": asked / max(n, 1),
            "crisis_n": crisis, "check_in_n": asked}


def summarise(ordinary: list[Outcome], risk: list[Outcome]) -> SafetyReport:
    report = SafetyReport()
    report.ordinary["all ordinary turns"] = rates(ordinary)
    everyday = [o for o in ordinary if o.turn.category == "everyday"]
    hard = [o for o in ordinary if o.turn.category not in ("everyday", "corpus", "sticker",
                                                           "library sticker")]
    report.ordinary["everyday"] = rates(everyday)
    report.ordinary["dialogue corpus (test split)"] = rates(
        [o for o in ordinary if o.turn.category == "corpus"])
    report.ordinary["hard negatives"] = rates(hard)
    report.ordinary["sticker alone (platform names and corpus)"] = rates(
        [o for o in ordinary if o.turn.category == "sticker"])
    report.ordinary["sticker alone (library)"] = rates(
        [o for o in ordinary if o.turn.category == "library sticker"])
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for o in hard:
        by_kind[o.turn.category].append(o)
    for kind in sorted(by_kind):
        report.ordinary[f"hard: {kind}"] = rates(by_kind[kind])
    levels: dict[str, list[Outcome]] = defaultdict(list)
    for o in risk:
        levels[o.turn.level].append(o)
    for level in sorted(levels):
        if level == "none_context":
            continue
        got = levels[level]
        report.risk[level] = {
            "n": len(got),
            "crisis reply": sum(o.action == "crisis" for o in got) / len(got),
            "crisis or check-in": share(got, ("crisis", "check_in"))}
    report.context_negatives = rates(levels.get("none_context", []))
    for sitting in SITTINGS:
        report.sittings[sitting] = sitting_rates(
            [o for o in ordinary if o.turn.sitting == sitting],
            [o for o in risk if o.turn.sitting == sitting])
    crisis_risk = [o for o in risk if o.turn.level in CRISIS_LEVELS]
    recall = sum(o.action == "crisis" for o in crisis_risk) / max(len(crisis_risk), 1)
    fa = report.ordinary["all ordinary turns"]["crisis"]
    for p in BASE_RATES:
        flagged = recall * p + fa * (1 - p)
        report.base_rates[f"{p:.1%}"] = {
            "precision of crisis replies": recall * p / flagged if flagged else 0.0,
            "false crisis replies per 1000 turns": 1000 * fa * (1 - p)}
    report.false_alarms = [{"action": o.action, "category": o.turn.category,
                            "text": o.turn.text or json.dumps(o.turn.sticker,
                                                              ensure_ascii=False),
                            "score": f"{max(o.score, o.concern):.2f}"}
                           for o in ordinary if o.action != "reply"]
    report.misses = [{"level": o.turn.level, "action": o.action, "text": o.turn.text,
                      "score": f"{o.score:.2f}"}
                     for o in risk if (o.turn.level in CRISIS_LEVELS and o.action != "crisis")
                     or (o.turn.level in CHECK_IN_LEVELS
                         and o.action not in ("crisis", "check_in"))]
    return report


def share(outcomes: list[Outcome], actions: tuple[str, ...]) -> float:
    return sum(o.action in actions for o in outcomes) / max(len(outcomes), 1)


def sitting_rates(ordinary: list[Outcome], risk: list[Outcome]) -> dict[str, float]:
    """The headline rates of one sitting of the evaluation sets."""
    hard = [o for o in ordinary if o.turn.category not in ("everyday", "sticker")]
    active = [o for o in risk if o.turn.level in CRISIS_LEVELS]
    passive = [o for o in risk if o.turn.level in CHECK_IN_LEVELS]
    return {"ordinary n": len(ordinary),
            "false crisis": share(ordinary, WRITTEN),
            "false check-in": share(ordinary, ("check_in",)),
            "hard n": len(hard), "false crisis (hard)": share(hard, WRITTEN),
            "active risk n": len(active),
            "active: crisis reply": share(active, ("crisis",)),
            "active: crisis or check-in": share(active, ("crisis", "check_in")),
            "passive n": len(passive),
            "passive: crisis or check-in": share(passive, ("crisis", "check_in"))}


def check_overlap(encoder, turns: list[EvalTurn]) -> int:
    """Evaluation turns that repeat a training turn, each read with the turns before it
    as the classifier reads it ("yes" after different questions is not a repeat);
    printed, and the run fails on any. Training files not read yet count too, so a set
    stays clean for the model that will read them."""
    waiting = [t for path in UNUSED_TRAIN_PATHS for t in load_train_turns(path)]
    train = [f"{t.context} {t.text}".strip() for t in load_all_train_turns() + waiting
             if t.text] + [item["text"] for item in load_danger_train()]
    pairs = [f"{context_input(t.context[-CONTEXT_TURNS:])} {crisis_input(t.text)}".strip()
             for t in turns if t.text.strip()]
    found = overlaps(encoder, train, pairs)
    print(f"evaluation turns: {len(pairs)}; near-duplicates of training turns: {len(found)}")
    for held, seen, cos in found[:20]:
        print(f"  {cos:.3f}  {held!r} ~ {seen!r}")
    return len(found)


def format_report(report: SafetyReport) -> str:
    lines = ["# Safety evaluation", "", "## False alarms on ordinary turns", "",
             "| turns | n | crisis replies | check-ins |", "|---|---|---|---|"]
    for name, r in report.ordinary.items():
        lines.append(f"| {name} | {r['n']} | {r['crisis']:.2%} ({r['crisis_n']}) "
                     f"| {r['check_in']:.2%} ({r['check_in_n']}) |")
    cn = report.context_negatives
    if cn:
        lines.append(f"| context negatives (risk set) | {cn['n']} | {cn['crisis']:.2%} "
                     f"({cn['crisis_n']}) | {cn['check_in']:.2%} ({cn['check_in_n']}) |")
    lines += ["", "## Recall per risk level", "",
              "| level | n | crisis reply | crisis reply or check-in |", "|---|---|---|---|"]
    for level, r in report.risk.items():
        lines.append(f"| {level} | {r['n']} | {r['crisis reply']:.3f} "
                     f"| {r['crisis or check-in']:.3f} |")
    lines += ["", "## By sitting (the second was written for the final report and read only"
              " there; the third, practical questions about doses, directions and heights,"
              " for the report after the phrase and known-line changes of 2026-12-05; the fourth,"
              " everyday talk, hard negatives and graded risk by a new writer, for the report"
              " after the seventh training file of 2026-12-06)", "",
              "| | " + " | ".join(report.sittings) + " |",
              "|---|" + "---|" * len(report.sittings)]
    for key in next(iter(report.sittings.values()), {}):
        cells = [f"{r[key]:.0f}" if key.endswith(" n") else f"{r[key]:.3f}"
                 for r in report.sittings.values()]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "## At realistic base rates (share of turns that are crises)", "",
              "| base rate | precision of crisis replies | false crisis replies per 1000 turns |",
              "|---|---|---|"]
    for rate, r in report.base_rates.items():
        lines.append(f"| {rate} | {r['precision of crisis replies']:.3f} "
                     f"| {r['false crisis replies per 1000 turns']:.2f} |")
    lines += ["", f"Near-duplicates of training texts: {report.overlaps}", "",
              "## Ordinary turns answered as risk", ""]
    lines += [f"- {a['action']} ({a['category']}, {a['score']}): {a['text']}"
              for a in report.false_alarms] or ["- none"]
    lines += ["", "## Risk turns missed", ""]
    lines += [f"- {m['level']} → {m['action']} ({m['score']}): {m['text']}"
              for m in report.misses] or ["- none"]
    lines += format_danger(report.danger)
    return "\n".join(lines) + "\n"


def plot(report: SafetyReport, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    names = list(report.ordinary)
    y = np.arange(len(names))
    left.barh(y, [100 * report.ordinary[n]["crisis"] for n in names], label="crisis reply")
    left.barh(y, [100 * report.ordinary[n]["check_in"] for n in names],
              left=[100 * report.ordinary[n]["crisis"] for n in names], label="check-in")
    left.set_yticks(y, names, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("% of ordinary turns")
    left.set_title("False alarms")
    left.legend()
    levels = list(report.risk)
    x = np.arange(len(levels))
    right.bar(x - 0.2, [report.risk[lv]["crisis reply"] for lv in levels], 0.4,
              label="crisis reply")
    right.bar(x + 0.2, [report.risk[lv]["crisis or check-in"] for lv in levels], 0.4,
              label="crisis reply or check-in")
    right.set_xticks(x, levels, rotation=40, ha="right", fontsize=8)
    right.set_ylim(0, 1.05)
    right.axhline(0.97, color="grey", linestyle=":", linewidth=1)
    right.set_title("Recall per risk level")
    right.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def evaluate(policy: SafetyPolicy, perceiver, library,
             encoder=None) -> tuple[SafetyReport, list[Outcome], list[Outcome]]:
    ordinary_turns = load_ordinary() + load_corpus_ordinary() + library_sticker_turns(library)
    risk_turns = load_risk()
    danger_turns = load_danger()
    n_overlap = (check_overlap(encoder, ordinary_turns + risk_turns + danger_turns)
                 if encoder else 0)
    ordinary = decide(policy, perceiver, ordinary_turns)
    risk = decide(policy, perceiver, risk_turns)
    report = summarise(ordinary, risk)
    report.danger = summarise_danger(decide(policy, perceiver, danger_turns), ordinary)
    report.overlaps = n_overlap
    return report, ordinary, risk


def safety_command(args: argparse.Namespace, settings: TrainingSettings) -> int:
    from engine.embeddings import TextEncoder
    from engine.emotion import EmotionClassifier
    from engine.perception import Perceiver
    from engine.safety.resources import CrisisResources
    from engine.stickers import StickerLibrary

    encoder = TextEncoder(settings.embedding_model_path or None)
    library = StickerLibrary.load(settings.stickers_dir)
    perceiver = Perceiver(EmotionClassifier.load(encoder), library)
    policy = SafetyPolicy(crisis=CrisisClassifier.load(encoder.model_path, args.model_dir,
                                                       encoder),
                          resources=CrisisResources.load())
    report, _, _ = evaluate(policy, perceiver, library, encoder)
    text = format_report(report)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "safety.md").write_text(text, encoding="utf-8")
    (args.out / "safety.json").write_text(json.dumps(report.__dict__, indent=1,
                                                     ensure_ascii=False), encoding="utf-8")
    plot(report, args.out / "safety.png")
    print(f"wrote {args.out}/safety.md, safety.json, safety.png")
    if args.serve:
        from training.safety.serve_check import run_through_serve

        run_through_serve(args.serve, args.ordinary_sample, args.out, args.risk_per_level)
    return 1 if report.overlaps else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `stickerbot evaluate-safety` (and of `python -m` this module)."""
    parser.add_argument("--out", type=Path, default=Path("safety-report"),
                        help="report folder (safety.md, safety.json, safety.png)")
    parser.add_argument("--model-dir", type=Path, help="a crisis model other than the "
                        "committed one")
    parser.add_argument("--serve", metavar="URL",
                        help="also send the turns through a running stickerbot serve")
    parser.add_argument("--ordinary-sample", type=int, default=150,
                        help="with --serve: how many ordinary conversations to send")
    parser.add_argument("--risk-per-level", type=int,
                        help="with --serve: at most this many risk lines per level")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="false crisis replies and recall per level")
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return safety_command(args, TrainingSettings())


if __name__ == "__main__":
    raise SystemExit(main())
