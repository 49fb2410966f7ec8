"""Training data: STICKERCONV dialogues become samples the paper's way; pair loaders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from engine.perception import Perceiver
from training import data as datasets


def sticker_object(library, sticker_id: str) -> dict[str, str]:
    s = library.get(sticker_id)
    return {"image": f"{s.pack}/{s.id}.png", "description": s.content_description,
            "emotion": s.emotion.value, "recommendation": s.recommendation,
            "origin_anno": s.emotion_description}


def session(library, a: str, b: str, said: str = "I failed my exam") -> dict:
    return {"user_persona": "a student", "user_status": "exam week", "conversation": [
        {"turn": 1, "user_message": said, "system_message": "I'm so sorry.",
         "user_sticker": None, "system_sticker": sticker_object(library, a)},
        {"turn": 2, "user_message": "", "system_message": "You will do better next time.",
         "user_sticker": sticker_object(library, b), "system_sticker": None},
    ]}


def test_every_system_turn_is_a_target_with_all_earlier_turns(classifier, library,
                                                              tmp_path: Path) -> None:
    a, b = library.ids()[:2]
    path = tmp_path / "sessions.jsonl"
    path.write_text(json.dumps(session(library, a, b)) + "\n\n")
    samples = datasets.dialogue_samples(datasets.read_sessions(path), library,
                                        Perceiver(classifier, library))
    first, second = samples
    assert first.target == "I'm so sorry." and first.sticker_id == a
    assert first.emotion == library.get(a).emotion.value and first.caption
    assert first.messages[0]["role"] == "system" and "They feel" in first.messages[0]["content"]
    assert first.messages[-1] == {"role": "user", "content": "I failed my exam"}
    assert second.sticker_id is None and second.images == [str(library.png_file(b))]
    roles = [m["role"] for m in second.messages]
    assert roles == ["system", "user", "assistant", "user"]
    earlier = second.messages[2]["content"]
    assert earlier.startswith("I'm so sorry.") and library.get(a).content_description in earlier


def test_a_record_without_a_conversation_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"conversation": []}\n{"user_persona": "x"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        datasets.read_sessions(path)


def test_unknown_stickers_are_dropped_not_guessed(classifier, library, tmp_path: Path) -> None:
    record = session(library, *library.ids()[:2])
    record["conversation"][0]["system_sticker"]["image"] = "other/not-ours.png"
    samples = datasets.dialogue_samples([record], library, Perceiver(classifier, library))
    assert samples[0].sticker_id is None and samples[0].target == "I'm so sorry."


def test_sticker_text_pairs_cover_the_library(library) -> None:
    captions = datasets.caption_samples(library)
    emotions = datasets.emotion_samples(library)
    assert len(captions) == len(emotions) == len(library)
    sticker = library.get(captions[0].sticker_id)
    assert captions[0].messages[0]["content"] == sticker.content_description
    assert sticker.emotion.value in emotions[0].messages[0]["content"]
    assert captions[0].caption.endswith(f"{sticker.emotion.value} sticker")


def test_image_caption_pairs_from_a_folder_and_a_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "pairs"
    folder.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (20, 20), "red").save(folder / f"{name}.png")
    (folder / "a.txt").write_text("a red square\n")  # b has no caption: skipped
    [pair] = datasets.image_caption_samples(folder)
    assert pair.target == "a red square" and pair.images == [str(folder / "a.png")]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"image": "pairs/b.png", "caption": "also red"}) + "\n")
    [row] = datasets.image_caption_samples(manifest)
    assert row.images == [str(tmp_path / "pairs" / "b.png")]
    manifest.write_text(json.dumps({"image": "pairs/c.png", "caption": "missing"}) + "\n")
    with pytest.raises(FileNotFoundError):
        datasets.image_caption_samples(manifest)
