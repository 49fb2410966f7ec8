"""Test helpers for the web chat: identities signed with the settings' web secret, and a
fake submitter whose replies can be held back (no model needed)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from bots.web.identity import Identities
from engine.types import Emotion, Reply, UserTurn
from storage.transcript import TranscriptStore

WEB_SECRET = "test-web-secret"


def bearer(user: str) -> dict[str, str]:
    """Headers that make a request come from `user`, for an app whose settings have
    web_secret=WEB_SECRET."""
    return {"Authorization": f"Bearer {Identities(WEB_SECRET.encode()).token(user)}"}


class HeldSubmitter:
    """Answers every turn with a fixed reply (recorded in `transcripts` when given, as
    the worker records it), once `release` is set when `held`. `turns` keeps what it was
    given; `files_seen` whether each turn's media existed when it was answered."""

    def __init__(self, transcripts: TranscriptStore | None = None,
                 held: bool = False) -> None:
        self.transcripts = transcripts
        self.release = asyncio.Event()
        self.held = held
        self.turns: list[UserTurn] = []
        self.files_seen: list[bool] = []

    async def submit(self, turn: UserTurn) -> Reply:
        self.turns.append(turn)
        if self.held:
            await self.release.wait()
        self.files_seen.append(all(Path(m.path).is_file() for m in turn.media))
        reply = Reply(text="I hear you.", user_emotion=Emotion.neutral, user_valence=0.0,
                      planned_emotion=Emotion.neutral)
        if self.transcripts is not None:
            await asyncio.to_thread(self.transcripts.record_exchange, turn, None, reply)
        return reply

    def close(self) -> None:
        pass


def start_in_thread(server) -> threading.Thread:
    """Run a uvicorn.Server in a daemon thread and wait until it accepts connections."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.05)
    return thread
