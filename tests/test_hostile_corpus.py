"""Black box: every input of the hostile corpus (tests/data/hostile/) through the web chat
and through Telegram (the fake Bot API server driving the real python-telegram-bot), in one
`stickerbot serve` process (retrieval replies, as the other platform tests pin, written by
the tiny LLM). Each input gets a clear answer or a clear error, the process never dies, and a
normal message afterwards is answered."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.data.hostile.make_corpus import build
from tests.factories import save_tiny_llm
from tests.harness.fake_telegram import FakeTelegram
from tests.serve_process import START_TIMEOUT_S, chat_client, start_serve

HOSTILE = Path(__file__).parent / "data" / "hostile"
CHAT = USER = 777
STICKER_KINDS = {"webp": "static", "tgs": "animated", "webm": "video"}
MIME = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "pdf": "application/pdf",
        "svg": "image/svg+xml", "bin": "application/octet-stream"}
CRISIS_MARK = "findahelpline.com"
CHECK_IN_MARK = "are you having thoughts of ending your life"
# Strings of the corpus that must not reach the log at INFO.
NOT_IN_LOG = ("All work and no play", "Ignore all previous instructions", "DROP TABLE",
              "never wake up")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("hostile")
    rows = build(out, large=True)
    committed = [json.loads(line) for line in (HOSTILE / "manifest.jsonl").open()]
    assert rows == committed, "manifest.jsonl is stale: run tests/data/hostile/make_corpus.py"
    assert len(rows) >= 60
    return out, rows


@pytest.fixture(scope="module")
def bot(tmp_path_factory, pack_root: Path, model_cache: Path):
    fake = FakeTelegram().start()
    data_dir = tmp_path_factory.mktemp("hostile-data")
    # The tiny LLM (tests/factories.py) writes the replies: SmolLM2 would spend minutes
    # reading the long inputs on two cores. Everything else is the real default stack;
    # tests/engine/safety/test_injection.py puts SmolLM2 itself under attack.
    llm = save_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))
    try:
        process, base, log_path = start_serve(
            data_dir, pack_root, model_cache, STICKERBOT_LLM_PATH=llm,
            TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_BASE_URL=fake.root_url,
            STICKERBOT_REPLY_MODEL="retrieval", STICKERBOT_MAX_NEW_TOKENS="10",
            STICKERBOT_OCR="false", STICKERBOT_RATE_LIMIT_BURST="1000",
            STICKERBOT_RATE_LIMIT_PER_MINUTE="6000", STICKERBOT_CHAT_RATE_LIMIT_BURST="1000",
            STICKERBOT_CHAT_RATE_LIMIT_PER_MINUTE="6000",
            STICKERBOT_ADDRESS_RATE_LIMIT_BURST="1000",
            STICKERBOT_ADDRESS_RATE_LIMIT_PER_MINUTE="6000", STICKERBOT_LOG_LEVEL="INFO")
    except BaseException:
        fake.stop()
        raise
    try:
        fake.wait_for("getUpdates", timeout=START_TIMEOUT_S)
    except AssertionError:
        process.kill()
        fake.stop()
        pytest.fail(f"stickerbot serve did not poll Telegram:\n{log_path.read_text()[-3000:]}")
    yield base, fake, process, data_dir
    if process.poll() is None:
        process.kill()
    fake.stop()


def message_rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "stickerbot.db") as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def text_of(folder: Path, row: dict[str, Any]) -> str:
    data = (folder / row["file"]).read_bytes()
    return data.decode("utf-8", errors="replace")


def post_web(client: httpx.Client, folder: Path, row: dict[str, Any]) -> httpx.Response:
    data = (folder / row["file"]).read_bytes()
    if row["kind"] == "raw":
        # Chunked, without a Content-Length: the size limit holds while the body arrives.
        return client.post("/api/chat/messages", content=iter([data]),
                           headers={"content-type": "application/json"})
    if row["kind"] == "upload":
        return client.post("/api/chat/messages", data={"text": ""},
                           files={"sticker": (row["file"], data, "application/octet-stream")})
    if row["kind"] == "upload_twice":
        return client.post("/api/chat/messages", data={"text": ""},
                           files=[("sticker", (row["file"], data, "image/png")),
                                  ("image", (row["file"], data, "image/png"))])
    return client.post("/api/chat/messages", json={"text": text_of(folder, row)})


def test_every_hostile_input_through_the_web_chat(bot, corpus) -> None:
    base, _, process, _ = bot
    folder, rows = corpus
    with chat_client(base, timeout=120) as client:
        for row in rows:
            response = post_web(client, folder, row)
            assert process.poll() is None, f"the server died on {row['file']}"
            assert response.status_code == row["web_status"], (row, response.text[:300])
            body = response.json()
            if response.status_code == 200:
                reply = body["reply"]
                assert reply["text"], row
                if row["expect"] == "crisis":
                    assert CRISIS_MARK in reply["text"] and reply["sticker"] is None, row
                if row["expect"] == "check_in":
                    assert CHECK_IN_MARK in reply["text"] and reply["sticker"] is None, row
                if reply["sticker"] is not None:
                    assert reply["sticker"]["url"].startswith("/stickers/"), row
            else:
                assert body["error"]["message"], row
                if row["web_code"]:
                    assert body["error"]["code"] == row["web_code"], (row, body)
        after = client.post("/api/chat/messages", json={"text": "thanks, how are you?"})
        assert after.status_code == 200 and after.json()["reply"]["text"]


def send_telegram(fake: FakeTelegram, folder: Path, row: dict[str, Any]) -> None:
    name = row["file"]
    ext = name.rsplit(".", 1)[-1]
    if row["kind"] in ("text", "text_bytes"):
        fake.send_text(CHAT, USER, text_of(folder, row))
    elif ext in STICKER_KINDS:
        fake.send_sticker(CHAT, USER, (folder / name).read_bytes(), kind=STICKER_KINDS[ext])
    else:
        fake.send_document(CHAT, USER, (folder / name).read_bytes(), file_name=name,
                           mime_type=MIME[ext])


def test_every_hostile_input_through_telegram(bot, corpus) -> None:
    _, fake, process, data_dir = bot
    folder, rows = corpus
    answered = 0
    for row in rows:
        if row["kind"] in ("raw", "upload_twice"):  # web chat requests only
            continue
        before = message_rows(data_dir)
        send_telegram(fake, folder, row)
        answered += 1
        fake.wait_for("sendMessage", answered, timeout=120,
                      where=lambda p: p.get("chat_id") == CHAT)
        assert process.poll() is None, f"the bot died on {row['file']}"
        text = [m["text"] for m in fake.sent_messages(CHAT) if "text" in m][-1]
        assert text, row
        stored = message_rows(data_dir) - before
        if row["expect"] == "refused":
            assert stored == 0, (row, text)  # refused with a sentence, never answered
        else:
            assert stored == 2, (row, text)
            if row["expect"] == "crisis":
                assert CRISIS_MARK in text, row
            if row["expect"] == "check_in":
                assert CHECK_IN_MARK in text, row
    for sticker in fake.calls_to("sendSticker"):
        assert sticker["chat_id"] == CHAT  # only library stickers exist to be sent
    fake.send_text(CHAT, USER, "thank you, that's all for today")
    fake.wait_for("sendMessage", answered + 1, timeout=120,
                  where=lambda p: p.get("chat_id") == CHAT)


def test_the_process_survived_and_kept_texts_out_of_its_log(bot) -> None:
    _, _, process, data_dir = bot
    assert process.poll() is None
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    log_text = (data_dir / "serve.log").read_text()
    for text in NOT_IN_LOG:
        assert text not in log_text, text
    # No reply failed and nothing of ours logged an error (python-telegram-bot may log the
    # fake server's 409 for a poll cut short by the shutdown).
    ours = re.findall(r" ERROR (?:bots|engine|storage|tasks)\.[^\n]*", log_text)
    assert not ours, ours
