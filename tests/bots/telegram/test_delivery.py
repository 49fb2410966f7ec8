"""Exactly once, whatever Telegram does: redelivered updates, 429, 5xx, 403, 409, replies
that could not be sent (resent later, also after a restart), floods, and the token."""

from __future__ import annotations

import logging
import time

from bots.telegram import DeliveryPolicy
from tests.bots.telegram.conftest import FAST, eventually, rows, texts, wait_answer

ANN, BOB = 1001, 1002


def settle(seconds: float = 1.2) -> None:
    """Give the bot time to do something it should not do (a second answer)."""
    time.sleep(seconds)


def state_of(bot, chat_id: int) -> list[str]:
    return [s for (s,) in rows(bot, f"SELECT state FROM deliveries WHERE chat_id='{chat_id}' "
                                    "ORDER BY id")]


def test_redelivered_update_is_answered_once(bot, fake) -> None:
    update = fake.send_text(ANN, ANN, "my cat is lost")
    wait_answer(fake, ANN)
    fake.wait_for("sendSticker")
    fake.redeliver(update)  # the same update_id again
    copy = {"message": dict(update["message"])}  # a new update_id, same chat + message id
    fake.push_update(copy)
    settle()
    assert len(fake.calls_to("sendMessage")) == 1
    assert len(fake.calls_to("sendSticker")) == 1
    assert rows(bot, "SELECT count(*) FROM messages")[0][0] == 2


def test_retry_after_is_honoured(bot, fake) -> None:
    fake.fail_next("sendMessage", 429, retry_after=1)
    started = time.monotonic()
    fake.send_text(ANN, ANN, "hello there")
    sent = wait_answer(fake, ANN, 2)
    assert time.monotonic() - started >= 1.0
    assert len(sent) == 2 and len(texts(fake, ANN)) == 1


def test_server_errors_are_retried_inline(bot, fake) -> None:
    fake.fail_next("sendMessage", 502, count=2)
    fake.send_text(ANN, ANN, "hello there")
    wait_answer(fake, ANN, 3)
    fake.wait_for("sendSticker")
    assert len(texts(fake, ANN)) == 1
    assert eventually(lambda: state_of(bot, ANN) == ["sent"])


def test_failed_send_is_resent_later_not_lost(bot, fake) -> None:
    fake.fail_next("sendMessage", 502, count=4)  # more than the 3 inline tries
    fake.send_text(ANN, ANN, "I miss my friends")
    eventually(lambda: state_of(bot, ANN) == ["pending"])
    wait_answer(fake, ANN, 5)  # the resend loop got it through
    fake.wait_for("sendSticker")
    assert len(texts(fake, ANN)) == 1
    assert eventually(lambda: state_of(bot, ANN) == ["sent"])


def test_sticker_failure_resends_only_the_sticker(bot, fake) -> None:
    fake.fail_next("sendSticker", 500, count=3)
    fake.send_text(ANN, ANN, "I am so happy today!")
    fake.wait_for("sendSticker", 4)
    assert eventually(lambda: state_of(bot, ANN) == ["sent"])
    assert len(fake.calls_to("sendMessage")) == 1 and len(texts(fake, ANN)) == 1


def test_unsent_reply_survives_a_restart(bot_factory, fake) -> None:
    slow = DeliveryPolicy(attempts=3, backoff_s=0.05, resend_interval_s=60)
    first = bot_factory(policy=slow)
    fake.fail_next("sendMessage", 503, count=3)
    fake.send_text(ANN, ANN, "please remember me")
    eventually(lambda: state_of(first, ANN) == ["pending"])
    first.close()
    second = bot_factory(policy=FAST)
    wait_answer(fake, ANN, 4)
    assert eventually(lambda: state_of(second, ANN) == ["sent"])
    assert len(texts(fake, ANN)) == 1
    assert rows(second, "SELECT count(*) FROM messages WHERE role='bot'")[0][0] == 1


def test_blocked_bot_marks_user_inactive_and_stops(bot, fake) -> None:
    fake.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user")
    fake.send_text(ANN, ANN, "hello")
    eventually(lambda: state_of(bot, ANN) == ["abandoned"])
    assert rows(bot, "SELECT active FROM users")[0][0] == 0
    settle()
    assert len(fake.calls_to("sendMessage")) == 1  # no retries after 403
    assert fake.calls_to("sendSticker") == []
    fake.send_text(ANN, ANN, "I unblocked you")  # they are back
    wait_answer(fake, ANN, 2)
    assert rows(bot, "SELECT active FROM users")[0][0] == 1


def test_conflict_is_reported_once_and_polling_goes_on(bot, fake, caplog) -> None:
    caplog.set_level(logging.ERROR)
    fake.fail_next("getUpdates", 409, count=2,
                   description="Conflict: terminated by other getUpdates request")
    fake.wait_for("getUpdates", 4)
    fake.send_text(ANN, ANN, "are you there?")
    wait_answer(fake, ANN)
    conflicts = [r for r in caplog.records if "another instance" in r.getMessage()]
    assert len(conflicts) == 1 and conflicts[0].levelno == logging.ERROR


def test_flood_gets_one_notice(bot_factory, fake) -> None:
    bot = bot_factory(rate_limit_burst=3, rate_limit_per_minute=1)
    for n in range(8):
        fake.send_text(ANN, ANN, f"message {n}")
    wait_answer(fake, ANN, 4)
    settle(2.0)
    notices = [t for t in texts(fake, ANN) if "faster than I can answer" in t]
    assert len(notices) == 1
    assert len(texts(fake, ANN)) == 4  # three answers and the notice
    assert rows(bot, "SELECT count(*) FROM messages WHERE role='user'")[0][0] == 3
    fake.send_text(BOB, BOB, "hi")  # someone else is not held back
    wait_answer(fake, BOB)


def test_token_never_reaches_the_logs(bot, fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("telegram", "httpx", "httpcore", "bots"):
        # Even with httpx at DEBUG (it logs every URL), the token is scrubbed.
        caplog.set_level(logging.DEBUG, logger=name)
    fake.fail_next("sendMessage", 502, count=3)
    fake.fail_next("getUpdates", 409)
    fake.send_text(ANN, ANN, "secret diary entry")
    wait_answer(fake, ANN, 4, timeout=30)
    assert caplog.records
    assert fake.token not in caplog.text
    assert all(fake.token not in r.getMessage() for r in caplog.records)
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not any("secret diary entry" in m for m in info)
