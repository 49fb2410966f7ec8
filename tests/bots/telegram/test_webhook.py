"""Webhook mode: Telegram POSTs updates to PTB's server, which checks the secret token."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.bots.telegram.conftest import wait_answer

ANN = 1001
SECRET = "s3cret-Token_for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def hook_bot(bot_factory):
    port = free_port()
    runner = bot_factory(telegram_webhook_url=f"http://127.0.0.1:{port}/tg/hook",
                         telegram_webhook_listen="127.0.0.1", telegram_webhook_port=port,
                         telegram_webhook_secret=SECRET)
    return runner, f"http://127.0.0.1:{port}/tg/hook"


def test_updates_arrive_by_webhook_with_the_secret(hook_bot, fake) -> None:
    _, url = hook_bot
    assert fake.webhook is not None
    assert (fake.webhook["url"], fake.webhook["secret_token"]) == (url, SECRET)
    fake.send_text(ANN, ANN, "hello from the webhook")
    assert wait_answer(fake, ANN)[0]["text"]
    assert fake.calls_to("getUpdates") == []  # no polling in webhook mode


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}])
def test_a_request_without_the_right_secret_is_refused(hook_bot, fake, headers) -> None:
    _, url = hook_bot
    update = {"update_id": 99, "message": {
        "message_id": 1, "date": 0, "chat": {"id": ANN, "type": "private", "first_name": "A"},
        "from": {"id": ANN, "is_bot": False, "first_name": "Eve"}, "text": "forged"}}
    response = httpx.post(url, json=update, headers=headers, timeout=10)
    assert response.status_code == 403
    fake.send_text(ANN, ANN, "the real one")  # a genuine update is still answered
    wait_answer(fake, ANN)
    assert len(fake.calls_to("sendMessage")) == 1
