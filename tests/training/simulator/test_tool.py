"""The sticker tool: emotion-balanced shards, the shard-count rule, train/test split, top-K."""

from __future__ import annotations

import logging

import pytest

from training.simulator.tool import StickerTool, effective_shards


def test_shard_count_rule() -> None:
    assert effective_shards(10_000, 100, 10) == 100
    assert effective_shards(203, 100, 10) == 20
    assert effective_shards(5, 100, 10) == 1


def test_shards_are_emotion_balanced_disjoint_and_split_80_20(library, encoder, index,
                                                              caplog) -> None:
    caplog.set_level(logging.INFO)
    tool = StickerTool(library, encoder, shards=100, top_k=10, index=index)
    assert len(tool) == 20 and "using 20 shards" in caplog.text
    assert tool.split_shards("train") == list(range(16))
    assert tool.split_shards("test") == list(range(16, 20))
    every = [sid for shard in tool.shards for sid in shard.ids]
    assert sorted(every) == sorted(library.ids())  # each sticker in exactly one shard
    for emotion in {s.emotion.value for s in library}:
        counts = [tool.emotion_counts(n)[emotion] for n in range(len(tool))]
        assert max(counts) - min(counts) <= 1, (emotion, counts)
    sizes = [len(shard.stickers) for shard in tool.shards]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 10


def test_search_returns_top_k_from_the_shard_only(library, encoder, index) -> None:
    tool = StickerTool(library, encoder, shards=10, top_k=5, index=index, seed=1)
    for shard in (0, 7):
        found = tool.search(shard, "a crying face, very sad")
        assert len(found) == 5 and {s.id for s in found} <= tool.shards[shard].ids
    query = "a crying face with tears, very sad"
    scores = [tool.similarity(query, s) for s in tool.search(3, query)]
    assert scores == sorted(scores, reverse=True)
    best = max(tool.shards[3].stickers, key=lambda s: tool.similarity(query, s))
    assert tool.search(3, query, k=1) == [best]
    with pytest.raises(ValueError):
        tool.split_shards("validation")
