"""End to end: `stickerbot serve` answering through a `cpu-small` PEGS checkpoint.

The checkpoint is built here on the real SmolLM2-135M-Instruct and the committed sticker
encoder (its trained parts fresh: LoRA starts at zero, so the text is SmolLM2's own),
saved as a versioned root, and served by a separate process; a second version made
CURRENT while it runs is picked up without a restart.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.pegs import PegsConfig, PegsModel, save_checkpoint, set_current
from engine.pegs.checkpoint import DEFAULT_ROOT, latest_version
from tests.serve_process import chat_client, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint_root(tmp_path_factory, model_cache: Path) -> Path:
    root = tmp_path_factory.mktemp("pegs-checkpoints")
    torch.manual_seed(0)
    model = PegsModel.from_config(PegsConfig.cpu_small(llm_cache_dir=str(model_cache)))
    save_checkpoint(model, root, "v1")
    with torch.no_grad():  # v2: other retrieval heads, so the version is visible in replies
        model.ret.text_proj.weight.mul_(-1.0)
    save_checkpoint(model, root, "v2", activate=False)
    return root


def test_the_web_chat_answers_with_pegs(tmp_path, pack_root: Path, model_cache: Path,
                                        checkpoint_root: Path, library) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with serve(data_dir, pack_root, model_cache, STICKERBOT_PEGS_CHECKPOINT=str(checkpoint_root),
               STICKERBOT_STICKER_RATE="1.0", STICKERBOT_OCR="false") as (base, log_path), \
            chat_client(base, timeout=180) as client:
        replies = []
        for text in ["I just lost my job and I feel terrible", "I don't know what to do now"]:
            response = client.post("/api/chat/messages", json={"text": text})
            assert response.status_code == 200, response.text
            replies.append(response.json()["reply"])
        assert all(len(r["text"].split()) >= 2 for r in replies)
        stickers = [r["sticker"] for r in replies if r["sticker"]]
        assert stickers, "a sticker rate of 1 forces a sticker by the second turn"
        assert stickers[0]["id"] in library
        assert client.get(stickers[0]["url"]).content[:4] == b"\x89PNG"

        # A sticker file from the person goes into the model as an image.
        party = next(s for s in library if s.emoji == "🎉")
        webp = io.BytesIO()
        Image.open(library.png_file(party.id)).resize((300, 300)).save(webp, "WEBP")
        picture = client.post("/api/chat/messages", data={"text": "look!"},
                              files={"sticker": ("party.webp", webp.getvalue(), "image/webp")})
        assert picture.status_code == 200, picture.text

        set_current(checkpoint_root, "v2")
        after = client.post("/api/chat/messages", json={"text": "thank you"})
        assert after.status_code == 200, after.text

    with sqlite3.connect(data_dir / "stickerbot.db") as db:
        rows = db.execute("SELECT role, sticker_id, model_version FROM messages "
                          "WHERE role = 'bot' ORDER BY id").fetchall()
    versions = [r[2] for r in rows]
    assert versions == ["pegs-cpu-small@v1+ret"] * 3 + ["pegs-cpu-small@v2+ret"]
    sent = [r[1] for r in rows if r[1]]
    assert len(sent) == len(set(sent)), "a sticker was sent twice in one conversation"
    log_text = log_path.read_text()
    assert "lost my job" not in log_text, "the person's text leaked into the log"


def test_the_committed_checkpoint_answers_when_pegs_is_asked_for(
        tmp_path, pack_root: Path, model_cache: Path) -> None:
    # The default (`auto`) is the tuned retrieval model: tests/test_end_to_end.py.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with serve(data_dir, pack_root, model_cache, STICKERBOT_REPLY_MODEL="pegs",
               STICKERBOT_STICKER_RATE="1.0", STICKERBOT_OCR="false") as (base, _), \
            chat_client(base, timeout=180) as client:
        for text in ["we won the championship!", "I still can't believe it"]:
            response = client.post("/api/chat/messages", json={"text": text})
            assert response.status_code == 200, response.text
            assert response.json()["reply"]["text"]
    with sqlite3.connect(data_dir / "stickerbot.db") as db:
        rows = db.execute("SELECT sticker_id, model_version FROM messages "
                          "WHERE role = 'bot' ORDER BY id").fetchall()
    served = latest_version(DEFAULT_ROOT)  # the committed CURRENT
    assert [r[1] for r in rows] == [f"pegs-cpu-small@{served}+ret"] * 2
    assert any(r[0] for r in rows), "a sticker rate of 1 forces one by the second turn"
