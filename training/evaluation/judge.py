"""LLM-judged metrics of the STICKERCONV paper (Table 3): EMP-txt, EMP-mm, CON and Rank.

The judge is any `engine.backends.ChatBackend` (the local SmolLM2 by default, or an
OpenAI-compatible endpoint): the same backends the simulator uses.

- EMP-txt: how empathetic the reply's text is, given the dialogue.
- EMP-mm: how empathetic the reply is with its sticker (the judge reads the sticker's
  description: judges here see no images).
- CON: how consistent the reply is with the dialogue, and its sticker with its text.
Each is the mean of `samples` (default 5, as in the paper) independent samples, each a
1-5 score with a reason. A sample whose output is not a valid {"score", "reason"} object
is re-asked (bounded, via `complete_structured`) and, if still malformed, dropped and
counted in `failures`; it is never scored. An item with no valid sample has score None.

- Rank: the judge orders several systems' replies to the same context (1 = best). Each
  context is judged under every cyclic rotation of the systems, so each system appears
  at each position once, and ranks are averaged: the judge's position bias cancels.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator, model_validator
from tqdm import tqdm

from engine.backends.base import ChatBackend, Conversation
from engine.backends.structured import complete_structured
from training.evaluation.items import EvalItem

ASPECTS = ("emp_txt", "emp_mm", "con")

_QUESTIONS = {
    "emp_txt": "How empathetic is the assistant's reply TEXT to the user: does it notice and "
               "respond to the user's feelings with care?",
    "emp_mm": "How empathetic is the assistant's whole reply, its text together with its "
              "sticker: does the sticker add fitting emotional support?",
    "con": "How consistent is the assistant's reply with the conversation, and its sticker "
           "with its text (no contradictions, on topic)?",
}

SYSTEM_PROMPT = ("You are a strict evaluator of empathetic dialogue. Answer with only one JSON "
                 'object {"score": <integer>, "reason": "<your reason>"}; score is an integer '
                 "from 1 (very poor) to 5 (excellent).")


_PLACEHOLDER = re.compile(r"^(<[^>]*>|\.*|\W*)$")


class Score(BaseModel):
    """One judge sample: an integer score on 1-5 and its reason."""

    score: int = Field(ge=1, le=5)
    reason: str = Field(min_length=1)

    @field_validator("reason")
    @classmethod
    def _not_a_placeholder(cls, reason: str) -> str:
        """A reason copied from the prompt's template ("<one sentence>", "...") means the
        judge did not answer: malformed, re-asked."""
        if _PLACEHOLDER.match(reason.strip()):
            raise ValueError("reason is the prompt's placeholder, not a reason")
        return reason.strip()


_LABELLED = re.compile(r"\bscore\b\W{0,4}([1-5])\b(?!\s*\.\d)", re.IGNORECASE)


def lenient_score(text: str) -> dict[str, Any] | None:
    """Accept an explicitly labelled 'Score: 4 ...' answer (the reason is the whole text);
    anything else (a bare number, prose) stays malformed and is re-asked."""
    match = _LABELLED.search(text)
    if match is None:
        return None
    return {"score": int(match.group(1)), "reason": text.strip()[:500]}


def _dialogue(item: EvalItem) -> str:
    lines = []
    for turn in item.context[-6:]:
        who = "User" if turn.role == "user" else "Assistant"
        sticker = f" [sticker: {turn.sticker}]" if turn.sticker else ""
        lines.append(f"{who}: {turn.text}{sticker}")
    return "\n".join(lines) or "(no earlier turns)"


def _reply(item: EvalItem, with_sticker: bool) -> str:
    if not with_sticker:
        return item.text
    sticker = item.sticker_description or (item.sticker_id if item.has_sticker else None)
    return f"{item.text} [sticker: {sticker or 'none'}]"


def score_prompt(item: EvalItem, aspect: str) -> Conversation:
    """The judge conversation for one aspect of one reply."""
    reply = _reply(item, with_sticker=aspect != "emp_txt")
    user = (f"Conversation:\n{_dialogue(item)}\n\nAssistant's reply: {reply}\n\n"
            f"{_QUESTIONS[aspect]}\nReply with one JSON object: "
            '{"score": <1-5>, "reason": "<one sentence>"}')
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


@dataclass
class Judged:
    """One aspect of one reply: the valid samples, their mean, the malformed count."""

    item_id: str
    system: str
    aspect: str
    scores: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    failures: int = 0

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.scores) if self.scores else None


def judge_scores(backend: ChatBackend, items: Sequence[EvalItem], *,
                 aspects: Sequence[str] = ASPECTS, samples: int = 5, max_tokens: int = 80,
                 temperature: float = 0.7, seed: int = 0, max_reasks: int = 2,
                 progress: bool = True) -> list[Judged]:
    """Every aspect of every item, `samples` independent samples each (different seeds)."""
    jobs = [(item, aspect) for item in items for aspect in aspects]
    results = [Judged(item.item_id, item.system, aspect) for item, aspect in jobs]
    conversations = [score_prompt(item, aspect) for item, aspect in jobs]
    for k in tqdm(range(samples), desc="judge samples", disable=not progress):
        answers = complete_structured(backend, conversations, Score, max_tokens=max_tokens,
                                      temperature=temperature, seed=seed + 1000 * k,
                                      max_reasks=max_reasks, lenient=lenient_score)
        for judged, answer in zip(results, answers, strict=True):
            if answer.value is None:
                judged.failures += 1
            else:
                judged.scores.append(answer.value.score)
                judged.reasons.append(answer.value.reason)
    return results


def summarize_scores(judged: Sequence[Judged]) -> dict[str, dict[str, float | None]]:
    """{system: {aspect: mean over items of the per-item means, aspect_failures: count}}."""
    by_system: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for j in judged:
        if j.mean is not None:
            by_system[j.system][j.aspect].append(j.mean)
        by_system[j.system][f"{j.aspect}_failures"].append(j.failures)
    out: dict[str, dict[str, float | None]] = {}
    for system, values in by_system.items():
        out[system] = {}
        for key, vals in values.items():
            if key.endswith("_failures"):
                out[system][key] = float(sum(vals))
            else:
                out[system][key] = statistics.fmean(vals) if vals else None
        for aspect in {k.removesuffix("_failures") for k in values}:
            out[system].setdefault(aspect, None)
    return out


# ---------------------------------------------------------------- Rank

LABELS = "ABCDEFGHIJ"


@cache
def ranking_schema(n: int) -> type[BaseModel]:
    """A schema accepting only a permutation of the first `n` labels."""

    class Ranking(BaseModel):
        labels: ClassVar[tuple[str, ...]] = tuple(LABELS[:n])
        ranking: list[str]
        reason: str = ""

        @model_validator(mode="after")
        def _permutation(self) -> Ranking:
            cleaned = [r.strip().strip("[]().").upper() for r in self.ranking]
            if sorted(cleaned) != sorted(self.labels):
                raise ValueError(f"ranking must order each of {', '.join(self.labels)} once")
            self.ranking = cleaned
            return self

    return Ranking


def rank_prompt(context_item: EvalItem, replies: Sequence[EvalItem]) -> Conversation:
    options = "\n".join(f"{LABELS[i]}: {_reply(r, with_sticker=True)}"
                        for i, r in enumerate(replies))
    example = ", ".join(f'"{label}"' for label in LABELS[:len(replies)])
    user = (f"Conversation:\n{_dialogue(context_item)}\n\nCandidate replies:\n{options}\n\n"
            "Rank the candidates from most to least empathetic and fitting. Reply with one "
            f'JSON object: {{"ranking": [{example}], "reason": "<one sentence>"}}')
    system = ("You are a strict evaluator of empathetic dialogue. Answer with only one JSON "
              "object.")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def rotations(n: int) -> list[list[int]]:
    """The n cyclic orderings of range(n): each index at each position exactly once."""
    return [[(start + i) % n for i in range(n)] for start in range(n)]


def judge_ranks(backend: ChatBackend, items: Sequence[EvalItem], *, max_tokens: int = 60,
                temperature: float = 0.3, seed: int = 0, max_reasks: int = 2
                ) -> dict[str, Any]:
    """Mean rank (1 = best) of each system over contexts that several systems answered.

    Items are grouped by `item_id`; each group is judged under every rotation of its
    systems. Returns {"mean_rank": {system: rank}, "judgements": n, "failures": n}.
    """
    groups: dict[str, list[EvalItem]] = defaultdict(list)
    for item in items:
        groups[item.item_id].append(item)
    conversations, keys = [], []
    for group in groups.values():
        group = sorted(group, key=lambda i: i.system)
        if len(group) < 2:
            continue
        if len(group) > len(LABELS):
            raise ValueError(f"at most {len(LABELS)} systems can be ranked together")
        for order in rotations(len(group)):
            replies = [group[i] for i in order]
            conversations.append(rank_prompt(group[0], replies))
            keys.append(replies)
    ranks: dict[str, list[int]] = defaultdict(list)
    failures = 0
    by_size: dict[int, list[int]] = defaultdict(list)
    for index, replies in enumerate(keys):
        by_size[len(replies)].append(index)
    for size, indices in by_size.items():
        answers = complete_structured(backend, [conversations[i] for i in indices],
                                      ranking_schema(size), max_tokens=max_tokens,
                                      temperature=temperature, seed=seed,
                                      max_reasks=max_reasks)
        for index, answer in zip(indices, answers, strict=True):
            if answer.value is None:
                failures += 1
                continue
            replies = keys[index]
            for position, label in enumerate(answer.value.ranking, start=1):
                ranks[replies[LABELS.index(label)].system].append(position)
    return {"mean_rank": {s: statistics.fmean(r) for s, r in sorted(ranks.items())},
            "judgements": len(conversations) - failures, "failures": failures}
