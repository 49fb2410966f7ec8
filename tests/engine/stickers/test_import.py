"""Importing a folder of sticker images into a library."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from engine.stickers import StickerIndex, StickerLibrary, import_folder, render_emoji
from engine.types import Emotion


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "incoming"
    src.mkdir()
    render_emoji("🐶").save(src / "happy_dog.png")
    render_emoji("🌧️").save(src / "rainy-day.webp", quality=80)
    flat = Image.new("RGB", (300, 300), "white")
    flat.paste(render_emoji("😡").resize((280, 280)), (10, 10), render_emoji("😡").resize(
        (280, 280)))
    flat.save(src / "grumpy cat.jpg", quality=85)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    (src / "notes.txt").write_text("not a sticker")
    return src


def test_import_with_csv_metadata(tmp_path: Path, folder: Path, encoder,
                                  caplog: pytest.LogCaptureFixture) -> None:
    meta = tmp_path / "meta.csv"
    with meta.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "name", "emotion", "emotion_description",
                                           "content_description", "recommendation", "emoji"])
        w.writeheader()
        w.writerow({"file": "happy_dog.png", "name": "happy puppy", "emotion": "happiness",
                    "emotion_description": "Bouncy, loyal joy.",
                    "content_description": "A cheerful puppy face with floppy ears.",
                    "recommendation": "Use it to greet a dog lover.", "emoji": "🐶"})
        w.writerow({"file": "rainy-day.webp", "name": "rainy day", "emotion": "sadness",
                    "emotion_description": "Gloomy low mood.",
                    "content_description": "A grey cloud pouring rain.",
                    "recommendation": "Use it when someone feels down on a dreary day.",
                    "emoji": ""})
    root = tmp_path / "lib"
    with caplog.at_level(logging.WARNING):
        added = import_folder(root, folder, encoder, pack="my pack", metadata=meta,
                              license="CC-BY-4.0")
    assert sorted(s.name for s in added) == ["grumpy cat", "happy puppy", "rainy day"]
    assert [p.name for p, _ in added.skipped] == ["broken.png"]
    assert "broken.png" in caplog.text

    lib = StickerLibrary.load(root)
    assert len(lib) == 3
    dog = next(s for s in lib if s.name == "happy puppy")
    assert dog.emotion == Emotion.happiness and dog.emoji == "🐶"
    assert dog.license == "CC-BY-4.0" and dog.pack == "my pack"
    assert next(s for s in lib if s.name == "grumpy cat").emotion == Emotion.neutral
    for s in lib:
        with Image.open(lib.webp_file(s.id)) as img:
            assert img.size == (512, 512)

    index = StickerIndex.load(root, lib, encoder)
    assert index.search("a gloomy rainy day that makes me sad", k=1)[0][0].name == "rainy day"
    # The imported copy of the dog is recognised when someone sends it back.
    match = lib.match_image(render_emoji("🐶").convert("RGB").resize((200, 200)))
    assert match is not None and match[0].id == dog.id


def test_import_without_metadata_uses_names_and_the_classifier(
        tmp_path: Path, folder: Path, encoder) -> None:
    seen: list[str] = []

    def emotion_of(name: str) -> Emotion:
        seen.append(name)
        return Emotion.anger if "grumpy" in name else Emotion.neutral

    root = tmp_path / "lib"
    added = import_folder(root, folder, encoder, pack="inbox", emotion_of=emotion_of)
    assert sorted(seen) == ["grumpy cat", "happy dog", "rainy day"]
    by_name = {s.name: s for s in added}
    assert by_name["grumpy cat"].emotion == Emotion.anger
    assert len({s.id for s in added}) == 3
    assert all(s.id.startswith("inbox-") and " " not in s.id for s in added)
    # Importing again replaces rather than duplicates.
    again = import_folder(root, folder, encoder, pack="inbox", emotion_of=emotion_of)
    assert len(again) == 3 and len(StickerLibrary.load(root)) == 3
    index = StickerIndex.load(root, StickerLibrary.load(root), encoder)
    assert index.search("grumpy angry cat", k=1)[0][0].name == "grumpy cat"


def test_json_metadata_keyed_by_file_name(tmp_path: Path, folder: Path, encoder) -> None:
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"grumpy cat.jpg": {
        "name": "furious face", "emotion": "anger", "emotion_description": "Rage.",
        "content_description": "A red scowling face.",
        "recommendation": "Use it to show outrage."}}), encoding="utf-8")
    added = import_folder(tmp_path / "lib", folder, encoder, pack="p", metadata=meta)
    furious = next(s for s in added if s.name == "furious face")
    assert furious.emotion == Emotion.anger


def test_metadata_with_an_unknown_emotion_is_reported(tmp_path: Path, folder: Path,
                                                      encoder) -> None:
    meta = tmp_path / "meta.jsonl"
    meta.write_text(json.dumps({"file": "happy_dog.png", "name": "dog",
                                "emotion": "jealousy"}) + "\n", encoding="utf-8")
    added = import_folder(tmp_path / "lib", folder, encoder, pack="p", metadata=meta)
    assert len(added) == 2
    reasons = dict((p.name, why) for p, why in added.skipped)
    assert "jealousy" in reasons["happy_dog.png"] and "broken.png" in reasons
