"""The crisis classifier's labelled turns and evaluation sets (training/safety/data).

Training: `crisis_train_turns.jsonl` (one labelled turn a line, with optional previous
turns), plus the earlier hand-labelled lines and the emotion model's ordinary lines as
more negatives. Evaluation, never read by training or threshold choice:
`eval_ordinary_*.jsonl` (whole ordinary conversations: every user turn is a negative)
and `eval_risk*.jsonl` (graded risk turns in context, and context negatives), in two
sittings by different writers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.safety.crisis import LEVEL_CLASS, context_input, crisis_input
from training.emotion.dataset import TRAIN_PATH as EMOTION_TRAIN_PATH

DATA_DIR = Path(__file__).parent / "data"
TRAIN_PATH = DATA_DIR / "crisis_train_turns.jsonl"
# Written later by other writers, to widen indirect and in-context risk.
TRAIN_PATHS = (TRAIN_PATH, DATA_DIR / "crisis_train_turns_2.jsonl",
               DATA_DIR / "crisis_train_turns_3.jsonl", DATA_DIR / "crisis_train_turns_4.jsonl",
               DATA_DIR / "crisis_train_turns_5.jsonl")
# A seventh writer's implicit risk (2026-12-06) is not read yet: the model retrained with
# it (4 or 3 epochs) and the known lines rebuilt with it each did no better on the
# calibration turns than the committed model (README, Safety), so it waits for a model
# that can use it.
UNUSED_TRAIN_PATHS = (DATA_DIR / "crisis_train_turns_6.jsonl",)
# By a fifth writer: the calibration set (training/safety/calibrate.py), never trained on.
CALIBRATION_PATH = DATA_DIR / "crisis_calibration_turns.jsonl"
# Earlier hand-labelled lines (issue 11) and the emotion model's ordinary lines.
LEGACY_PATHS = (DATA_DIR / "crisis_lines_2026-11.jsonl",)
# Four sittings of evaluation sets: the first (2026-11) was read while the classifier was
# worked on; the second ("_2", 2026-12-05), third ("_3") and fourth ("_4", 2026-12-06)
# were written by new writers, each read only for the report after it. The report gives
# each sitting its own figures.
ORDINARY_EVAL_PATHS = (DATA_DIR / "eval_ordinary_everyday.jsonl",
                       DATA_DIR / "eval_ordinary_hard.jsonl",
                       DATA_DIR / "eval_ordinary_everyday_2.jsonl",
                       DATA_DIR / "eval_ordinary_hard_2.jsonl",
                       DATA_DIR / "eval_ordinary_practical_3.jsonl",
                       DATA_DIR / "eval_ordinary_4.jsonl")
# Danger to the person from someone else (engine.safety.danger): lines and look-alikes
# for its bank (training.safety.danger_lines), and an evaluation set by a writer who saw
# neither the patterns nor any safety data.
DANGER_TRAIN_PATH = DATA_DIR / "danger_train_turns.jsonl"
DANGER_EVAL_PATH = DATA_DIR / "eval_danger.jsonl"
RISK_EVAL_PATHS = (DATA_DIR / "eval_risk.jsonl", DATA_DIR / "eval_risk_2.jsonl",
                   DATA_DIR / "eval_risk_3.jsonl", DATA_DIR / "eval_risk_4.jsonl")
# The dialogue corpus (training/corpus): ordinary conversation by other writers. Its
# train split adds negatives, its validation split helps choose thresholds, its test
# split is evaluation only.
CORPUS_DIR = Path(__file__).parents[1] / "corpus"
CORPUS_TEST_PATH = CORPUS_DIR / "test.jsonl"
VALIDATION_SHARE = 0.15
# Training lines from other data sets (the emotion model's, the dialogue corpus) that
# repeat an evaluation turn, as `stickerbot evaluate-safety` found: left out here.
DECONTAMINATED = frozenset({
    "how long does it take to boil an egg",
    "cinema floor was so sticky my shoe nearly stayed there",
})


@dataclass(frozen=True)
class LabelledTurn:
    """One user turn as the classifier reads it, with its grade."""

    context: str  # context_input of the previous turns ("" at the start)
    text: str  # crisis_input of the turn
    level: str  # a key of LEVEL_CLASS
    category: str = ""  # what kind of line: idiom, grief, sticker, plan, ...
    source: str = ""
    conversation: str = ""  # the id of its conversation or line
    split: str = ""  # "train" or "validation" where the source fixes it; else by hash

    @property
    def label(self) -> str:
        return LEVEL_CLASS[self.level]

    @property
    def pair(self) -> tuple[str, str]:
        return self.context, self.text


def _lines(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _context(turns: list[dict[str, Any]]) -> str:
    return context_input([(t["role"], t.get("text") or sticker_words(t.get("sticker")))
                          for t in turns])


def sticker_words(sticker: dict[str, Any] | None) -> str:
    """A sent sticker in the words perception would use when only the platform's emoji
    and name are known (the evaluation builds the real description with perception)."""
    if not sticker:
        return ""
    what = "a sticker"
    if sticker.get("emoji"):
        what += f" of {sticker['emoji']}"
    if sticker.get("set_name") or sticker.get("name"):
        what += f' from the set "{sticker.get("set_name") or sticker.get("name")}"'
    return f"[sent {what}]"


def load_train_turns(path: Path = TRAIN_PATH) -> list[LabelledTurn]:
    rows = []
    for i, item in enumerate(_lines(path)):
        level = str(item.get("level") or item["label"])
        if level not in LEVEL_CLASS:
            raise ValueError(f"{path}:{i + 1}: unknown level {level!r}")
        rows.append(LabelledTurn(_context(item.get("context") or []),
                                 crisis_input(str(item["text"])), level,
                                 str(item.get("category", "")), path.name, f"{path.stem}-{i}"))
    return rows


def load_legacy() -> list[LabelledTurn]:
    """The earlier lines (text and a 3-way label, no context) and the emotion model's
    everyday lines, all as they were written."""
    rows = []
    for path in LEGACY_PATHS:
        for i, item in enumerate(_lines(path)):
            rows.append(LabelledTurn("", crisis_input(str(item["text"])), str(item["label"]),
                                     "legacy", path.name, f"{path.stem}-{i}"))
    for i, item in enumerate(_lines(EMOTION_TRAIN_PATH)):
        rows.append(LabelledTurn("", crisis_input(str(item["text"])), "none",
                                 f"emotion:{item['emotion']}", EMOTION_TRAIN_PATH.name,
                                 f"emotion-{i}"))
    return rows


def load_corpus_turns() -> list[LabelledTurn]:
    """The user turns of the dialogue corpus's train and validation splits, in context,
    as ordinary turns (the corpus has no crisis content)."""
    rows = []
    for split in ("train", "validation"):
        for turn in load_corpus_ordinary(CORPUS_DIR / f"{split}.jsonl"):
            if turn.text.strip():
                rows.append(LabelledTurn(context_input(turn.context[-2:]),
                                         crisis_input(turn.text), "none", "corpus",
                                         f"corpus/{split}", turn.conversation, split))
    return rows


def load_all_train_turns() -> list[LabelledTurn]:
    """Everything training and threshold choice read."""
    turns = [t for path in TRAIN_PATHS for t in load_train_turns(path)]
    return [t for t in turns + load_legacy() + load_corpus_turns()
            if t.text.strip().lower() not in DECONTAMINATED]


def in_validation(turn: LabelledTurn, share: float = VALIDATION_SHARE) -> bool:
    """The turn's source split, or a fixed split by the text's hash, so a line stays
    on its side across runs."""
    if turn.split:
        return turn.split == "validation"
    digest = hashlib.sha256(turn.text.lower().encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


# --- evaluation sets ---------------------------------------------------------------

@dataclass(frozen=True)
class EvalTurn:
    """One evaluated user turn: its previous turns, and the sticker it sent if any."""

    context: list[tuple[str, str]]  # (role, text) oldest first
    text: str
    level: str  # "none" for ordinary turns
    category: str  # everyday | a hard-negative category | sticker | a risk wording
    sticker: dict[str, Any] | None = None
    conversation: str = ""
    sitting: str = ""  # which writing: one of SITTINGS (eval files), "corpus", "library"


def sitting_of(path: Path) -> str:
    """The sitting an evaluation file was written in, from its name's suffix: "_2" the
    second (for the final report), "_3" the third (practical questions), "_4" the fourth
    (everyday, hard negatives and graded risk, for the report after the seventh training
    file), else the first."""
    return {"2": "second", "3": "third", "4": "fourth"}.get(path.stem.rsplit("_", 1)[-1],
                                                           "first")


# The sittings of the evaluation files, in the order they were written.
SITTINGS = tuple(dict.fromkeys(sitting_of(p) for p in (*ORDINARY_EVAL_PATHS, *RISK_EVAL_PATHS)))


def load_ordinary(paths: tuple[Path, ...] = ORDINARY_EVAL_PATHS) -> list[EvalTurn]:
    """Every user turn of the ordinary conversations, each with the turns before it."""
    out = []
    for path in paths:
        for conv in _lines(path):
            seen: list[tuple[str, str]] = []
            for turn in conv["turns"]:
                text = str(turn.get("text") or "")
                sticker = turn.get("sticker")
                if turn["role"] == "user":
                    category = "sticker" if sticker and not text.strip() else (
                        turn.get("hard") or "everyday")
                    out.append(EvalTurn(list(seen), text, "none", str(category), sticker,
                                        str(conv["id"]), sitting_of(path)))
                seen.append((turn["role"], text or sticker_words(sticker)))
    return out


def load_corpus_ordinary(path: Path = CORPUS_TEST_PATH) -> list[EvalTurn]:
    """Every user turn of the dialogue corpus's test split (STICKERCONV sessions)."""
    out = []
    for session in _lines(path):
        seen: list[tuple[str, str]] = []
        for turn in session["conversation"]:
            text = str(turn.get("user_message") or "")
            obj = turn.get("user_sticker")
            sticker = {"library_id": Path(obj["image"]).stem} if obj else None
            category = "sticker" if sticker and not text.strip() else "corpus"
            out.append(EvalTurn(list(seen), text, "none", category, sticker,
                                str(session["session_id"]), "corpus"))
            seen.append(("user", text or "[sent a sticker]"))
            seen.append(("bot", str(turn.get("system_message") or "")))
    return out


def load_risk(paths: tuple[Path, ...] = RISK_EVAL_PATHS) -> list[EvalTurn]:
    out = []
    for path in paths:
        for item in _lines(path):
            context = [(t["role"], str(t.get("text") or ""))
                       for t in item.get("context") or []]
            out.append(EvalTurn(context, str(item["text"]), str(item["level"]),
                                str(item.get("wording", "")), None, str(item["id"]),
                                sitting_of(path)))
    return out


def load_danger(path: Path = DANGER_EVAL_PATH) -> list[EvalTurn]:
    """The danger set: level "danger" or "none", category its kind."""
    return [EvalTurn([(t["role"], str(t.get("text") or "")) for t in item.get("context") or []],
                     str(item["text"]), str(item["label"]), str(item["kind"]),
                     conversation=str(item["id"]), sitting="danger")
            for item in _lines(path)]


def load_danger_train(path: Path = DANGER_TRAIN_PATH) -> list[dict[str, Any]]:
    """The danger bank's lines: {"id", "text", "label" ("danger" | "none"), "kind"}."""
    return _lines(path)
