"""Black box: `stickerbot serve` as its own process, on the real default models, talking
to the fake Discord server (REST, gateway, CDN): a short conversation with text, a
sticker and a slash command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine import media_samples as samples
from tests.harness.fake_discord import FakeDiscord
from tests.serve_process import REPO, START_TIMEOUT_S, free_port

USER = 4242


@pytest.fixture(scope="module")
def bot(tmp_path_factory, pack_root: Path, model_cache: Path):
    fake = FakeDiscord().start()
    channel = fake.add_dm(USER)
    data_dir = tmp_path_factory.mktemp("dc-e2e-data")
    (data_dir / "stickers").symlink_to(pack_root)
    env = dict(os.environ, STICKERBOT_DATA_DIR=str(data_dir),
               STICKERBOT_HTTP_PORT=str(free_port()), STICKERBOT_MODEL_CACHE=str(model_cache),
               DISCORD_BOT_TOKEN=fake.token, DISCORD_API_BASE_URL=fake.api_url,
               DISCORD_GATEWAY_URL=fake.gateway_url,
               STICKERBOT_REPLY_MODEL="retrieval")  # PEGS: tests/test_pegs_end_to_end.py
    env.pop("TELEGRAM_BOT_TOKEN", None)
    log_path = data_dir / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, str(REPO / "stickerbot.py"), "serve"],
                                   cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        fake.wait_for_gateway("IDENTIFY", timeout=START_TIMEOUT_S)
    except AssertionError:
        process.kill()
        fake.stop()
        pytest.fail(f"the bot never connected:\n{log_path.read_text()[-3000:]}")
    yield fake, channel, process, log_path
    if process.poll() is None:
        process.kill()
    fake.stop()


def test_a_short_conversation_with_text_stickers_and_a_command(bot) -> None:
    fake, channel, process, log_path = bot
    assert {c["name"] for c in fake.application_commands} >= {
        "reset", "forget", "stickers", "channel"}

    fake.send_message(channel, USER, "I just lost my job and I feel terrible")
    first = fake.wait_for_message(channel, 1, timeout=120)[0]
    assert first["content"]
    assert fake.requests_to("POST", rf"/channels/{channel}/typing")

    fake.send_message(channel, USER, "", stickers=[(31, "SadCat", 3, samples.make_lottie_json())])
    fake.wait_for_message(channel, 2, timeout=120)
    fake.send_message(channel, USER, "", stickers=[(32, "PartyCat", 4, samples.make_gif())])
    answers = fake.wait_for_message(channel, 3, timeout=120)
    assert all(m["content"] for m in answers)
    assert "couldn't" not in " ".join(m["content"] for m in answers)
    assert any(a["data"].startswith(b"\x89PNG") for m in answers for a in m["attachments"])

    fake.interact("reset", USER, channel_id=channel)
    fake.wait_for("POST", r"/interactions/\d+/[^/]+/callback", timeout=30)

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    log_text = log_path.read_text()
    assert fake.token not in log_text, "the bot token leaked into the log"
    assert "I just lost my job" not in log_text
