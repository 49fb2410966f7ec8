"""User profiles (persona, situation, emotion): the seed set, SELF-INSTRUCT expansion, the mix.

Agent4SC draws each simulated user from a profile. A hand-written seed set
(`data/seed_profiles.jsonl`, five per emotion) is expanded the SELF-INSTRUCT way: the
LLM sees a few profiles of one emotion and writes a new one; a new profile whose text
has ROUGE-L >= 0.7 with any profile already kept is a near-duplicate and is dropped
(the threshold of the SELF-INSTRUCT paper). Target emotions go round-robin so the mix
stays balanced; the mix is reported.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

from engine.backends import ChatBackend, complete_structured
from engine.types import Emotion
from training.evaluation.text_metrics import rouge_l as rouge_l_words

log = logging.getLogger(__name__)

SEED_FILE = Path(__file__).with_name("data") / "seed_profiles.jsonl"
DUPLICATE_ROUGE_L = 0.7


class Profile(BaseModel):
    """One simulated user, as the ARCHITECTURE's profile format: one JSON object a line."""

    emotion: Emotion
    persona: str = Field(min_length=8, max_length=300)
    situation: str = Field(min_length=8, max_length=300)

    def text(self) -> str:
        return f"{self.persona} {self.situation}"


class ProfileDraft(BaseModel):
    persona: str = Field(min_length=8, max_length=300)
    situation: str = Field(min_length=8, max_length=300)


def load_profiles(path: Path = SEED_FILE) -> list[Profile]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [Profile.model_validate_json(line) for line in lines if line.strip()]


def save_profiles(profiles: Iterable[Profile], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(p.model_dump_json() + "\n" for p in profiles), encoding="utf-8")


# --- ROUGE-L ------------------------------------------------------------------------

def rouge_tokens(text: str) -> list[str]:
    """Lower-cased alphanumeric words (as the rouge-score package tokenises)."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure of two texts' words (the evaluation's own ROUGE-L)."""
    return rouge_l_words(rouge_tokens(candidate), rouge_tokens(reference))


def is_near_duplicate(text: str, kept: Iterable[str],
                      threshold: float = DUPLICATE_ROUGE_L) -> bool:
    return any(rouge_l(text, other) >= threshold for other in kept)


def emotion_mix(profiles: Iterable[Profile]) -> dict[str, int]:
    counts = Counter(p.emotion.value for p in profiles)
    return {e.value: counts.get(e.value, 0) for e in Emotion}


# --- SELF-INSTRUCT expansion --------------------------------------------------------

_LINE = re.compile(r"(persona|situation)\s*[:\-]\s*(.+)", re.IGNORECASE)


def _lenient_draft(text: str) -> dict[str, str] | None:
    """'Persona: ... / Situation: ...' lines, the shape the prompt asks for."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.search(line.strip().strip("*-# "))
        if match and match.group(1).lower() not in found:
            found[match.group(1).lower()] = match.group(2).strip().strip('"')
    return found if len(found) == 2 else None


def _prompt(examples: list[Profile], emotion: Emotion) -> list[dict[str, str]]:
    shots = "\n\n".join(f"Persona: {p.persona}\nSituation: {p.situation}" for p in examples)
    return [
        {"role": "system", "content": "You write short, realistic user profiles for a "
                                      "chat simulation."},
        {"role": "user", "content": (
            f"Here are people who feel {emotion.value}:\n\n{shots}\n\n"
            f"Write one NEW, different person who feels {emotion.value}, in exactly two "
            f"lines:\nPersona: <who they are>\nSituation: <what just happened>")},
    ]


def expand_profiles(backend: ChatBackend, seeds: list[Profile], target: int, *, seed: int = 0,
                    batch: int = 8, shots: int = 3, max_rounds: int = 50,
                    max_tokens: int = 60) -> tuple[list[Profile], dict]:
    """Grow `seeds` to `target` profiles; returns (profiles, report)."""
    rng = random.Random(seed)
    kept = list(seeds)
    texts = [p.text() for p in kept]
    report = {"seeds": len(seeds), "generated": 0, "invalid": 0, "near_duplicates": 0,
              "rounds": 0}
    emotions = list(Emotion)
    turn = 0
    while len(kept) < target and report["rounds"] < max_rounds:
        report["rounds"] += 1
        wanted = [emotions[(turn + i) % len(emotions)] for i in range(batch)]
        turn += batch
        prompts = []
        for emotion in wanted:
            same = [p for p in kept if p.emotion == emotion] or kept
            prompts.append(_prompt(rng.sample(same, min(shots, len(same))), emotion))
        answers = complete_structured(backend, prompts, ProfileDraft, max_tokens=max_tokens,
                                      temperature=0.9, seed=rng.randrange(2**31),
                                      max_reasks=1, lenient=_lenient_draft)
        for emotion, answer in zip(wanted, answers, strict=True):
            report["generated"] += 1
            if answer.value is None:
                report["invalid"] += 1
                continue
            profile = Profile(emotion=emotion, persona=answer.value.persona,
                              situation=answer.value.situation)
            if is_near_duplicate(profile.text(), texts):
                report["near_duplicates"] += 1
                continue
            kept.append(profile)
            texts.append(profile.text())
            if len(kept) >= target:
                break
    report["kept"] = len(kept)
    report["emotion_mix"] = emotion_mix(kept)
    log.info("profiles: %s", json.dumps(report))
    return kept, report
