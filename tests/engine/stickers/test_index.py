"""Text retrieval over the default pack with the real MiniLM encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.stickers import Sticker, StickerIndex, StickerLibrary, render_emoji
from engine.types import Emotion

COMFORTING = {"🤗", "🫂", "❤️‍🩹", "🥰", "💖", "💕", "💛", "💜", "🧸", "🫶", "🥹", "😊"}


def emojis(results: list[tuple[Sticker, float]]) -> list[str | None]:
    return [s.emoji for s, _ in results]


def test_a_hug_query_returns_comforting_stickers(index: StickerIndex) -> None:
    results = index.search("a warm hug to comfort a sad friend", k=5)
    assert len(results) == 5
    assert results[0][0].emoji in {"🫂", "🤗"}
    assert len(COMFORTING & set(emojis(results))) >= 2
    scores = [score for _, score in results]
    assert scores == sorted(scores, reverse=True)
    assert -1.0 <= scores[-1] <= scores[0] <= 1.0


def test_queries_find_the_fitting_emotion(index: StickerIndex) -> None:
    cases = {
        "I'm so angry at my boss, he yelled at me": Emotion.anger,
        "that smell is disgusting, I feel sick": Emotion.disgust,
        "I'm scared of the dark and the spiders": Emotion.fear,
        "my grandmother passed away and I can't stop crying": Emotion.sadness,
        "wow, I can't believe it, what a shock": Emotion.surprise,
    }
    for query, emotion in cases.items():
        top = index.search(query, k=3)
        assert top[0][0].emotion == emotion, (query, emojis(top))
        assert sum(s.emotion == emotion for s, _ in top) >= 2, (query, emojis(top))
    # A pet's death: the crying cat, though the other cats compete on "cat".
    assert index.search("my cat died and I can't stop crying", k=1)[0][0].emoji == "😿"


def test_emotion_filter_returns_only_that_emotion(index: StickerIndex,
                                                   library: StickerLibrary) -> None:
    for emotion in Emotion:
        results = index.search("congratulations on your new job", emotion=emotion, k=10)
        assert len(results) == 10  # the selector filters inside faiss: still k results
        assert {s.emotion for s, _ in results} == {emotion}
    everything = index.search("anything", emotion=Emotion.disgust, k=1000)
    assert len(everything) == len(library.by_emotion(Emotion.disgust))


def test_exclude_removes_stickers_and_keeps_k(index: StickerIndex) -> None:
    first = index.search("a warm hug to comfort a sad friend", k=5)
    banned = [s.id for s, _ in first[:3]]
    again = index.search("a warm hug to comfort a sad friend", k=5, exclude=banned)
    assert len(again) == 5
    assert not set(banned) & {s.id for s, _ in again}
    assert again[0][0].id == first[3][0].id
    both = index.search("sad", emotion=Emotion.sadness, k=5, exclude=banned + ["noto-1f622"])
    assert {s.emotion for s, _ in both} == {Emotion.sadness}
    assert "noto-1f622" not in {s.id for s, _ in both}


def test_search_vector_matches_search(index: StickerIndex, encoder) -> None:
    query = "good luck with your exam tomorrow"
    by_text = index.search(query, k=4)
    by_vector = index.search_vector(encoder.encode([query])[0] * 3.0, k=4)  # unnormalised
    assert emojis(by_text) == emojis(by_vector)
    assert np.allclose([s for _, s in by_text], [s for _, s in by_vector], atol=1e-5)
    assert "🍀" in emojis(by_text) or "🤞" in emojis(by_text)


def test_a_repeated_query_is_encoded_once(index: StickerIndex) -> None:
    """The plan's comfort query and the descriptions a tuned LLM asks for come again and
    again: the second search costs no encoder pass and finds the same."""
    query = "a warm hug for someone whose cat ran away"
    first = index.search(query, k=3)
    calls = index.query_vector.cache_info().misses
    assert index.search(query, emotion=Emotion.sadness, k=3)
    assert index.search(query, k=3) == first
    assert index.query_vector.cache_info().misses == calls


def test_save_load_round_trip(index: StickerIndex, pack_root: Path, library: StickerLibrary,
                              encoder) -> None:
    loaded = StickerIndex.load(pack_root, StickerLibrary.load(pack_root), encoder)
    assert len(loaded) == len(library) and loaded.exact
    q = "feeling anxious before the interview"
    assert [s.id for s, _ in loaded.search(q)] == [s.id for s, _ in index.search(q)]


def _small_library(root: Path, emoji: list[str]) -> StickerLibrary:
    lib = StickerLibrary(root)
    for i, e in enumerate(emoji):
        lib.add(Sticker(id=f"t-{i}", pack="test", emoji=e, name=f"sticker {i}",
                        emotion=Emotion.neutral, emotion_description="calm",
                        content_description=f"emoji {e}", recommendation="Use it to test."),
                render_emoji(e))
    lib.save()
    return lib


def test_load_rebuilds_when_the_library_changed(tmp_path: Path, encoder) -> None:
    lib = _small_library(tmp_path, ["😐", "🙂"])
    StickerIndex.build(lib, encoder).save(tmp_path)
    lib.add(Sticker(id="volcano", pack="test", emoji="🌋", name="volcano",
                    emotion=Emotion.anger, emotion_description="Rage about to erupt.",
                    content_description="An erupting volcano with lava.",
                    recommendation="Use it when anger boils over."), render_emoji("🌋"))
    lib.save()
    index = StickerIndex.load(tmp_path, StickerLibrary.load(tmp_path), encoder)
    assert len(index) == 3
    assert index.search("furious eruption of lava", k=1)[0][0].id == "volcano"


def test_hnsw_past_the_threshold_agrees_with_exact(library: StickerLibrary, index: StickerIndex,
                                                   encoder) -> None:
    hnsw = StickerIndex.build(library, encoder, hnsw_threshold=50)
    exact = index
    assert not hnsw.exact and exact.exact
    vector = encoder.encode(["I feel heartbroken after the breakup"])[0]
    assert hnsw.search_vector(vector, k=1)[0][0].id == exact.search_vector(vector, k=1)[0][0].id
    filtered = hnsw.search_vector(vector, emotion=Emotion.fear, k=5, exclude=["noto-1f628"])
    assert len(filtered) == 5 and {s.emotion for s, _ in filtered} == {Emotion.fear}
    assert "noto-1f628" not in {s.id for s, _ in filtered}


def test_library_lookups(library: StickerLibrary) -> None:
    sticker = library.get("noto-1f917")
    assert sticker.emoji == "🤗" and "noto-1f917" in library and "nope" not in library
    assert library.png_file(sticker.id).is_file() and library.webp_file(sticker.id).is_file()
    assert all(s.emotion == Emotion.fear for s in library.by_emotion(Emotion.fear))
    try:
        library.get("nope")
    except KeyError:
        pass
    else:
        raise AssertionError("unknown id must raise KeyError")
    with Image.open(library.png_file(sticker.id)) as img:
        assert img.mode == "RGBA"
