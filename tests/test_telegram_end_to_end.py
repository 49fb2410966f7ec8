"""Black box: `stickerbot serve` as its own process, on the real default models, talking
to the fake Telegram Bot API server: a short conversation with text and stickers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine import media_samples as samples
from tests.harness.fake_telegram import FakeTelegram
from tests.serve_process import REPO, START_TIMEOUT_S, free_port

CHAT = USER = 4242


@pytest.fixture(scope="module")
def bot(tmp_path_factory, pack_root: Path, model_cache: Path):
    fake = FakeTelegram().start()
    data_dir = tmp_path_factory.mktemp("tg-e2e-data")
    (data_dir / "stickers").symlink_to(pack_root)
    env = dict(os.environ, STICKERBOT_DATA_DIR=str(data_dir),
               STICKERBOT_HTTP_PORT=str(free_port()), STICKERBOT_MODEL_CACHE=str(model_cache),
               TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_BASE_URL=fake.root_url,
               STICKERBOT_REPLY_MODEL="retrieval")  # PEGS: tests/test_pegs_end_to_end.py
    log_path = data_dir / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, str(REPO / "stickerbot.py"), "serve"],
                                   cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        fake.wait_for("getUpdates", timeout=START_TIMEOUT_S)
    except AssertionError:
        process.kill()
        fake.stop()
        pytest.fail(f"the bot never polled:\n{log_path.read_text()[-3000:]}")
    yield fake, process, log_path
    if process.poll() is None:
        process.kill()
    fake.stop()


def bot_texts(fake: FakeTelegram) -> list[str]:
    return [m["text"] for m in fake.sent_messages(CHAT) if "text" in m]


def test_a_short_conversation_with_text_and_stickers(bot) -> None:
    fake, process, log_path = bot
    assert fake.commands and {c["command"] for c in fake.commands} >= {
        "start", "help", "reset", "forget", "stickers"}

    fake.send_command(CHAT, USER, "/start")
    fake.wait_for("sendMessage", where=lambda p: p["chat_id"] == CHAT)
    assert "store" in bot_texts(fake)[-1].lower()

    fake.send_text(CHAT, USER, "I just lost my job and I feel terrible")
    fake.wait_for("sendSticker", where=lambda p: p["chat_id"] == CHAT, timeout=120)
    assert len(bot_texts(fake)) == 2 and bot_texts(fake)[-1]
    assert fake.calls_to("sendChatAction")

    fake.send_sticker(CHAT, USER, samples.make_tgs(), kind="animated", emoji="😭",
                      set_name="SadCats")
    fake.wait_for("sendMessage", 3, where=lambda p: p["chat_id"] == CHAT, timeout=120)
    fake.send_sticker(CHAT, USER, samples.make_webm(), kind="video", emoji="🎉",
                      set_name="PartyTime")
    fake.wait_for("sendMessage", 4, where=lambda p: p["chat_id"] == CHAT, timeout=120)
    assert all(bot_texts(fake))

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    log_text = log_path.read_text()
    assert fake.token not in log_text, "the bot token leaked into the log"
    assert "I just lost my job" not in log_text
