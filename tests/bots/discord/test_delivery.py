"""Limits and failures on Discord: one polite flood notice, a 429 and a failing send
survived, and a gateway reconnect in the middle of a conversation, with every message
answered exactly once; the token never reaches a log and message text stays below INFO."""

from __future__ import annotations

import logging
import time

from bots.discord import DeliveryPolicy
from tests.bots.discord.conftest import ANN, MESSAGES, dm, eventually, rows, texts, wait_answers


def answered_once(bot, count: int) -> None:
    """`count` user messages, each with exactly one stored answer and one sent delivery."""
    eventually(lambda: rows(bot, "SELECT state, count(*) FROM deliveries GROUP BY state")
               == [("sent", count)], timeout=20)
    bot_rows = rows(bot, "SELECT platform_message_id, count(*) FROM messages "
                         "WHERE role='bot' GROUP BY platform_message_id")
    assert len(bot_rows) == count and all(n == 1 for _, n in bot_rows)


def test_flood_gets_one_polite_notice(bot_factory, fake) -> None:
    bot = bot_factory(rate_limit_burst=2, rate_limit_per_minute=1)
    channel = dm(fake)
    for n in range(6):
        fake.send_message(channel, ANN, f"message number {n}")
    wait_answers(fake, channel, 3)
    time.sleep(1.0)
    sent = texts(fake, channel)
    notices = [t for t in sent if "faster than I can answer" in t]
    assert len(notices) == 1 and len(sent) == 3
    assert len(rows(bot, "SELECT id FROM messages WHERE role='bot'")) == 2


def test_rate_limited_send_is_retried_and_nothing_is_lost(bot, fake) -> None:
    fake.fail_next("POST", MESSAGES, 429, retry_after=0.3)
    channel = dm(fake)
    fake.send_message(channel, ANN, "is anyone there?")
    wait_answers(fake, channel)
    assert len(fake.requests_to("POST", MESSAGES)) == 2  # refused once, then sent
    answered_once(bot, 1)
    assert len(fake.messages_in(channel)) == 1


def test_failed_send_is_resent_later_exactly_once(bot, fake) -> None:
    fake.fail_next("POST", MESSAGES, 503, count=2)
    channel = dm(fake)
    fake.send_message(channel, ANN, "hello, how are you?")
    wait_answers(fake, channel, timeout=20)
    answered_once(bot, 1)
    time.sleep(1.0)  # the resend loop runs every 0.3 s: it must not send it again
    assert len(fake.messages_in(channel)) == 1
    assert len(fake.requests_to("POST", MESSAGES)) == 3


def test_answer_left_pending_is_sent_after_a_restart(bot_factory, fake) -> None:
    slow = DeliveryPolicy(resend_interval_s=3600, stale_after_s=3600, max_resend_delay_s=3600)
    first = bot_factory(policy=slow)
    fake.fail_next("POST", MESSAGES, 503)
    channel = dm(fake)
    fake.send_message(channel, ANN, "are you still there?")
    eventually(lambda: rows(first, "SELECT state FROM deliveries") == [("pending",)], timeout=20)
    assert fake.messages_in(channel) == []
    first.close()
    bot_factory(policy=slow)  # the answer waits in the ledger and goes out at start-up
    wait_answers(fake, channel)
    answered_once(first, 1)


def test_reconnect_mid_conversation_answers_every_message_once(bot, fake) -> None:
    channel = dm(fake)
    fake.send_message(channel, ANN, "first, before the drop")
    wait_answers(fake, channel)
    fake.drop_connection(resumable=True)
    fake.send_message(channel, ANN, "second, while reconnecting")
    fake.send_message(channel, ANN, "third, while reconnecting")
    wait_answers(fake, channel, 3)
    eventually(lambda: fake.resume_count >= 1)
    fake.drop_connection(resumable=False)  # a new session this time: IDENTIFY again
    eventually(lambda: fake.identify_count >= 2, timeout=20)
    fake.send_message(channel, ANN, "fourth, after a fresh session")
    wait_answers(fake, channel, 4)
    answered_once(bot, 4)
    time.sleep(1.0)
    assert len(fake.messages_in(channel)) == 4


def test_token_never_logged_and_text_stays_below_info(bot_factory, fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bot = bot_factory()
    fake.fail_next("POST", MESSAGES, 503)
    channel = dm(fake)
    fake.send_message(channel, ANN, "my secret worry about tomorrow")
    wait_answers(fake, channel, timeout=20)
    answered_once(bot, 1)
    bot.stop()
    assert fake.token not in caplog.text
    assert all("secret worry" not in r.getMessage() for r in caplog.records
               if r.levelno >= logging.INFO)
