"""The real bot (python-telegram-bot, the queue, the tiny responder) against the fake
Bot API server over HTTP on 127.0.0.1.

The bot runs on its own event loop in a thread, so tests can block on the fake's
`wait_for` the way a person waits for an answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from bots.telegram import DeliveryPolicy, build_telegram_application, start_telegram
from bots.telegram import stop_telegram as stop_app
from settings import Settings
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from tasks.runtime import Runtime, init_runtime, reset_runtime
from tasks.submit import TurnSubmitter
from tests.factories import tiny_responder
from tests.harness.fake_telegram import FakeTelegram

FAST = DeliveryPolicy(attempts=3, backoff_s=0.05, resend_interval_s=0.3, stale_after_s=0.5,
                      max_resend_delay_s=0.6)


class BotRunner:
    """One Application on a private loop; start()/stop() may be called again (restarts)."""

    def __init__(self, settings: Settings, runtime: Runtime, library: Any,
                 policy: DeliveryPolicy) -> None:
        self.settings = settings
        self.runtime = runtime
        self.library = library
        self.policy = policy
        self.submitter = TurnSubmitter(settings)
        self.media_store = MediaStore(settings.media_dir)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app: Any = None

    @property
    def transcripts(self) -> TranscriptStore:
        return self.runtime.transcripts

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self) -> None:
        async def go() -> None:
            self.app = build_telegram_application(
                self.settings, self.submitter, self.transcripts, self.media_store,
                self.library, policy=self.policy)
            await start_telegram(self.app, self.settings, poll_timeout=1)

        self.call(go())

    def stop(self) -> None:
        if self.app is not None:
            self.call(stop_app(self.app))
            self.app = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.submitter.close()


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def make_settings(tmp_path: Any, fake: FakeTelegram, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=tmp_path, telegram_bot_token=fake.token,
        telegram_api_base_url=fake.root_url, max_upload_bytes=300_000, max_text_chars=500,
        rate_limit_burst=30, rate_limit_per_minute=600, ocr=False)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def bot_factory(tmp_path, fake, classifier, library, index
                ) -> Iterator[Callable[..., BotRunner]]:
    """Start a bot with some settings changed (and a delivery policy); stopped after."""
    runners: list[BotRunner] = []

    def make(policy: DeliveryPolicy = FAST, start: bool = True, **overrides: Any) -> BotRunner:
        settings = make_settings(tmp_path, fake, **overrides)
        reset_runtime()
        runtime = init_runtime(settings, tiny_responder(classifier, library, index))
        runner = BotRunner(settings, runtime, library, policy)
        runners.append(runner)
        if start:
            runner.start()
        return runner

    yield make
    for runner in runners:
        runner.close()
    reset_runtime()


@pytest.fixture
def bot(bot_factory) -> BotRunner:
    return bot_factory()


def texts(fake: FakeTelegram, chat_id: int) -> list[str]:
    return [m["text"] for m in fake.sent_messages(chat_id) if "text" in m]


def stickers(fake: FakeTelegram, chat_id: int) -> list[dict[str, Any]]:
    return [m["sticker"] for m in fake.sent_messages(chat_id) if "sticker" in m]


def wait_answer(fake: FakeTelegram, chat_id: int, count: int = 1,
                timeout: float = 20.0) -> list[dict[str, Any]]:
    """Wait until the bot sent `count` text messages to the chat."""
    return fake.wait_for("sendMessage", count, timeout=timeout,
                         where=lambda p: p.get("chat_id") == chat_id)


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until check() is truthy (the bot records things just after it sends them)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "condition not met in time"
            return value
        time.sleep(0.05)


def rows(bot: BotRunner, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    with sqlite3.connect(bot.settings.data_dir / "stickerbot.db") as db:
        return db.execute(sql).fetchall()
