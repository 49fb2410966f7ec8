"""split_text: long replies cut on boundaries a reader expects, never over the limit."""

from __future__ import annotations

import pytest

from bots.render import split_text, utf16_len


def test_short_text_is_one_chunk_and_blank_text_none() -> None:
    assert split_text("  Hello there.  ", 50) == ["Hello there."]
    assert split_text(" \n\t ", 50) == []


def test_cuts_at_sentence_ends_not_mid_word() -> None:
    text = "I hear you. That sounds really hard. You are not alone in this. Take care."
    chunks = split_text(text, 40)
    assert all(len(c) <= 40 for c in chunks)
    assert chunks[0] == "I hear you. That sounds really hard."
    assert " ".join(chunks) == text


def test_prefers_paragraphs_then_lines() -> None:
    para = "First paragraph line one.\nline two of it.\n\nSecond paragraph is here."
    assert split_text(para, 45) == ["First paragraph line one.\nline two of it.",
                                    "Second paragraph is here."]
    lines = "alpha beta gamma\ndelta epsilon zeta eta theta"
    assert split_text(lines, 30)[0] == "alpha beta gamma"


def test_a_break_too_early_is_skipped_for_a_later_finer_one() -> None:
    # The only sentence end is near the start: cutting there would waste the chunk.
    text = "Oh. " + "word " * 30
    chunks = split_text(text, 60)
    assert len(chunks[0]) > 30 and all(len(c) <= 60 for c in chunks)


def test_one_giant_word_is_cut_hard_and_nothing_is_lost() -> None:
    text = "x" * 10_000
    chunks = split_text(text, 4096)
    assert [len(c) for c in chunks] == [4096, 4096, 1808]
    assert "".join(chunks) == text


def test_telegram_sized_reply_keeps_every_word() -> None:
    sentences = [f"Sentence number {i} says something kind." for i in range(400)]
    text = " ".join(sentences)
    chunks = split_text(text, 4096)
    assert len(text) > 16_000 and len(chunks) == 5
    assert all(4000 < len(c) <= 4096 for c in chunks[:-1])
    assert all(c.endswith(".") for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_utf16_measure_counts_emoji_as_two_and_keeps_them_whole() -> None:
    text = "😀" * 10
    chunks = split_text(text, 5, measure=utf16_len)
    assert all(utf16_len(c) <= 5 for c in chunks)
    assert "".join(chunks) == text
    family = "👩\u200d👩\u200d👧" * 3  # joined sequences: never start a chunk with a joiner
    for chunk in split_text(family, 7):
        assert not chunk.startswith("\u200d")


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        split_text("hi", 0)
