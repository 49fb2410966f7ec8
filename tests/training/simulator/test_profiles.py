"""Profiles: the seed set, ROUGE-L, SELF-INSTRUCT expansion without near-duplicates."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from engine.types import Emotion
from tests.engine.backends.scripted import ScriptedBackend
from training.simulator.profiles import (
    Profile,
    emotion_mix,
    expand_profiles,
    is_near_duplicate,
    load_profiles,
    rouge_l,
    save_profiles,
)


def test_seed_set_is_diverse_and_covers_every_emotion() -> None:
    seeds = load_profiles()
    assert len(seeds) >= 30
    mix = emotion_mix(seeds)
    assert set(mix) == {e.value for e in Emotion} and min(mix.values()) >= 4
    texts = [p.text() for p in seeds]
    for i, text in enumerate(texts):  # the seeds are not near-duplicates of each other
        assert not is_near_duplicate(text, texts[:i])


def test_rouge_l_is_the_lcs_f_measure() -> None:
    # LCS "the cat on the mat" = 5 of 6 words each way.
    assert rouge_l("the cat sat on the mat", "The cat is on the mat.") == pytest.approx(5 / 6)
    # LCS 2 ("a c"): P = 2/3, R = 2/4, F = 2PR/(P+R) = 4/7.
    assert rouge_l("a b c", "a c d e") == pytest.approx(4 / 7)
    assert rouge_l("same words here", "same words here") == 1.0
    assert rouge_l("", "anything") == 0.0 and rouge_l("x y", "z") == 0.0


_VOCAB = ("kite river violin market garden winter ladder lantern pepper harbor tunnel "
          "bakery comet meadow pillow saddle thunder orchid canyon mirror velvet engine "
          "puzzle island copper rabbit shadow trumpet walnut glacier").split()


class Drafter:
    """A scripted SELF-INSTRUCT model: near-copies for anger, junk for disgust, else new."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, conversation) -> str:
        self.calls += 1
        first = conversation[1]["content"]  # the SELF-INSTRUCT prompt, also in re-asks
        if "feel anger" in first:
            persona = first.split("Persona: ")[1].split("\n")[0]
            situation = first.split("Situation: ")[1].split("\n")[0]
            return f"Persona: {persona}\nSituation: {situation}"
        if "feel disgust" in first:
            return "I cannot do that."
        words = random.Random(self.calls).sample(_VOCAB, 10)
        return (f'{{"persona": "Someone who loves {" ".join(words[:5])}.", '
                f'"situation": "Today the {" ".join(words[5:])} happened."}}')


def test_expansion_drops_near_duplicates_and_malformed_drafts(tmp_path: Path) -> None:
    seeds = load_profiles()
    profiles, report = expand_profiles(ScriptedBackend(Drafter()), seeds, len(seeds) + 10,
                                       seed=3, batch=7, max_rounds=6)
    assert report["near_duplicates"] > 0 and report["invalid"] > 0
    assert report["kept"] == len(profiles) <= len(seeds) + 10
    new = profiles[len(seeds):]
    assert new and all(p.emotion not in (Emotion.anger, Emotion.disgust) for p in new)
    texts = [p.text() for p in profiles]
    for i, text in enumerate(texts):
        assert all(rouge_l(text, other) < 0.7 for other in texts[:i])
    assert report["emotion_mix"] == emotion_mix(profiles)
    save_profiles(profiles, tmp_path / "profiles.jsonl")
    lines = (tmp_path / "profiles.jsonl").read_text().splitlines()
    assert [Profile.model_validate(json.loads(line)) for line in lines] == profiles
    assert set(json.loads(lines[0])) == {"emotion", "persona", "situation"}
