from __future__ import annotations

import pytest

from engine.emotion.lexicon import EMOJI_TABLE, emoji_emotion, find_emoji
from engine.types import Emotion


@pytest.mark.parametrize(("emoji", "emotion"), [
    ("😭", Emotion.sadness), ("💔", Emotion.sadness), ("😡", Emotion.anger),
    ("🤬", Emotion.anger), ("😱", Emotion.fear), ("🤮", Emotion.disgust),
    ("😮", Emotion.surprise), ("😂", Emotion.happiness), ("❤️", Emotion.happiness),
    ("🤔", Emotion.neutral),
])
def test_common_emoji_map_to_their_emotion(emoji: str, emotion: Emotion) -> None:
    hit = emoji_emotion(emoji)
    assert hit is not None and hit[0] == emotion


def test_valence_sign_follows_the_feeling() -> None:
    assert emoji_emotion("🥰")[1] > 0.5
    assert emoji_emotion("😢")[1] < -0.5
    assert all(-1.0 <= v <= 1.0 for _, v in EMOJI_TABLE.values())


def test_variation_selectors_and_skin_tones_are_ignored() -> None:
    assert emoji_emotion("❤") == emoji_emotion("❤️")
    assert emoji_emotion("👍🏿") == emoji_emotion("👍")
    assert emoji_emotion("🙏🏽")[0] == Emotion.happiness


def test_zwj_sequences_resolve() -> None:
    # Known sequence, and an unknown one that falls back to its first face.
    assert emoji_emotion("❤️‍🩹")[0] == Emotion.sadness
    assert emoji_emotion("🤦🏻‍♀️")[0] == Emotion.anger
    assert emoji_emotion("😶‍🌫️") is not None


def test_emoji_inside_text_vote() -> None:
    assert emoji_emotion("i love it 😍😍 hmm 🤔")[0] == Emotion.happiness
    assert [e for _, e, _ in find_emoji("ok 😭 then 😡")] == [Emotion.sadness, Emotion.anger]
    assert emoji_emotion("no emoji at all :)") is None
    assert emoji_emotion("") is None


def test_table_covers_a_few_hundred_emoji() -> None:
    assert len(EMOJI_TABLE) >= 250
    assert {e for e, _ in EMOJI_TABLE.values()} == set(Emotion)
