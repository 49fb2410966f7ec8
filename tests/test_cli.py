"""The `stickerbot` command's sticker actions and its start-up errors."""

from __future__ import annotations

import shutil

import pytest

import stickerbot
from engine.stickers import StickerLibrary
from tests.engine import media_samples as samples


@pytest.fixture
def data_dir(tmp_path, pack_root, monkeypatch):
    shutil.copytree(pack_root, tmp_path / "stickers")
    monkeypatch.setenv("STICKERBOT_DATA_DIR", str(tmp_path))
    return tmp_path


def test_list_filters_by_emotion(data_dir, capsys) -> None:
    assert stickerbot.main(["stickers", "list", "--emotion", "fear"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 14
    assert all(line.split("\t")[1] == "fear" for line in lines)


def test_import_adds_a_folder_with_metadata_and_infers_emotion_without(
        data_dir, tmp_path, capsys) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "cheer.png").write_bytes(samples.make_png())
    (folder / "so_angry_right_now.webp").write_bytes(samples.make_webp())
    (folder / "broken.gif").write_bytes(b"GIF89a broken")
    (folder / "meta.csv").write_text(
        "file,name,emotion,emotion_description,content_description,recommendation\n"
        "cheer.png,cheer,happiness,Pure joy.,A red square cheering.,Use it to celebrate.\n")
    before = len(StickerLibrary.load(data_dir / "stickers"))
    assert stickerbot.main(["stickers", "import", str(folder), "--pack", "mine",
                            "--metadata", str(folder / "meta.csv"), "--license", "CC0"]) == 0
    assert "imported 2 stickers" in capsys.readouterr().out
    library = StickerLibrary.load(data_dir / "stickers")
    assert len(library) == before + 2
    mine = {s.name: s for s in library if s.pack == "mine"}
    assert mine["cheer"].emotion.value == "happiness" and mine["cheer"].license == "CC0"
    assert mine["so angry right now"].emotion.value == "anger"


def test_serve_without_a_sticker_library_says_how_to_build_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STICKERBOT_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        stickerbot.main(["serve"])
    assert "stickerbot stickers build" in str(exit_info.value)


def test_train_runs_stages_and_prints_where_the_checkpoint_went(data_dir, capsys) -> None:
    from tests.training.test_data import session

    library = StickerLibrary.load(data_dir / "stickers")
    sessions = data_dir / "sessions.jsonl"
    import json

    sessions.write_text("".join(json.dumps(session(library, *library.ids()[i:i + 2])) + "\n"
                                for i in range(4)))
    assert stickerbot.main(["train", "--preset", "tiny", "--stages", "emotion,tool",
                            "--sessions", str(sessions), "--val-sessions", str(sessions),
                            "--max-steps", "1", "--epochs", "1", "--version", "t1"]) == 0
    out = capsys.readouterr().out
    assert "held-out sticker retrieval, untrained: top-1" in out
    assert (data_dir / "checkpoints" / "t1" / "training_report.json").is_file()
    assert (data_dir / "checkpoints" / "CURRENT").read_text().strip() == "t1"
