"""The real bot (discord.py, the queue, the tiny responder) against the fake Discord
server over HTTP and a websocket on 127.0.0.1.

The client runs on its own event loop in a thread, so tests can block on the fake's
`wait_for` the way a person waits for an answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import discord
import pytest

from bots.discord import DeliveryPolicy, build_discord_client, start_discord, stop_discord
from settings import Settings
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from tasks.runtime import Runtime, init_runtime, reset_runtime
from tasks.submit import TurnSubmitter
from tests.factories import tiny_responder
from tests.harness.fake_discord import FakeDiscord

FAST = DeliveryPolicy(attempts=3, backoff_s=0.05, resend_interval_s=0.3, stale_after_s=0.5,
                      max_resend_delay_s=0.6)
ANN, BOB = 1001, 1002
GUILD = 5000
CHANNEL = GUILD + 1
OTHER_CHANNEL = GUILD + 2
MESSAGES = r"/channels/\d+/messages"


class BotRunner:
    """One Client on a private loop; start()/stop() may be called again (restarts)."""

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
        self.client: Any = None

    @property
    def transcripts(self) -> TranscriptStore:
        return self.runtime.transcripts

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self) -> None:
        async def go() -> None:
            self.client = build_discord_client(
                self.settings, self.submitter, self.transcripts, self.media_store,
                self.library, policy=self.policy, guild_ready_timeout=0.1)
            await start_discord(self.client, self.settings, ready_timeout_s=30)

        self.call(go())

    def stop(self) -> None:
        if self.client is not None:
            self.call(stop_discord(self.client))
            self.client = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.submitter.close()


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
             discord.asset.Asset.BASE)
    with FakeDiscord() as server:
        server.add_dm(ANN)
        server.add_dm(BOB)
        server.add_guild(GUILD, channels=[CHANNEL, OTHER_CHANNEL])
        yield server
    (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
     discord.asset.Asset.BASE) = saved


def make_settings(tmp_path: Any, fake: FakeDiscord, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=tmp_path, discord_bot_token=fake.token, discord_api_base_url=fake.api_url,
        discord_gateway_url=fake.gateway_url, max_upload_bytes=300_000, max_text_chars=500,
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


def dm(fake: FakeDiscord, user_id: int = ANN) -> int:
    return fake.add_dm(user_id)


def texts(fake: FakeDiscord, channel_id: int) -> list[str]:
    return [m["content"] for m in fake.messages_in(channel_id) if m.get("content")]


def wait_answers(fake: FakeDiscord, channel_id: int, count: int = 1,
                 timeout: float = 20.0) -> list[dict[str, Any]]:
    """Wait until the bot has `count` messages in the channel; returns them all."""
    return fake.wait_for_message(channel_id, count, timeout=timeout)


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until check() is truthy (the bot records things just after it sends them)."""
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
