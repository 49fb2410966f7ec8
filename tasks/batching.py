"""Answering turns of different chats together: one model thread, batches of ready turns.

Any thread hands a turn in (`TurnBatcher.submit`) and gets a future of its reply. The
model thread takes up to `size` ready turns at a time and answers them with one call of
`answer` (one batched generation). A turn is ready when no earlier turn of its chat is
waiting, so each chat's turns are answered one after the other, in the order they came,
and each sees the reply to the one before.

How long to wait for company: the chats of the last batch are expected back (people
answer the replies they just got), so once the model is free a batch waits at most
`window_s` for them and for the chats already waiting, then goes with what is ready. A
lone chat never waits (its last batch was itself); at the start the first turn waits the
window for others.

`answer` returns one reply per turn, or raises: every turn of that batch then fails
with the error (the database being away, a time limit), as it would have alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from engine.types import Reply, UserTurn
from tasks.metrics import BATCH_TURNS

log = logging.getLogger(__name__)

Answer = Callable[[list[UserTurn]], list[Reply]]


def chat_of(turn: UserTurn) -> tuple[str, str]:
    return turn.platform, turn.chat_id


@dataclass
class _Waiting:
    turn: UserTurn
    arrived: float = field(default_factory=time.monotonic)
    future: Future[Reply] = field(default_factory=Future)


class BatcherClosed(RuntimeError):
    """The batcher was closed before the turn was answered."""


class TurnBatcher:
    def __init__(self, answer: Answer, size: int = 8, window_s: float = 0.1,
                 name: str = "respond-batch") -> None:
        if size < 1:
            raise ValueError("batch size must be at least 1")
        self.answer = answer
        self.size = size
        self.window_s = window_s
        self._waiting: list[_Waiting] = []
        self._last_chats: set[tuple[str, str]] = set()  # those of the last batch
        self._free_since = time.monotonic()  # when the model finished its last batch
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, turn: UserTurn) -> Future[Reply]:
        """Queue a turn; the future holds its reply (or the error that stopped it)."""
        waiting = _Waiting(turn)
        with self._changed:
            if self._closed:
                raise BatcherClosed("the batcher is closed")
            self._waiting.append(waiting)
            self._changed.notify_all()
        return waiting.future

    def close(self) -> None:
        """Stop taking turns; turns not yet started fail with BatcherClosed."""
        with self._changed:
            self._closed = True
            left, self._waiting = self._waiting, []
            self._changed.notify_all()
        for waiting in left:
            if waiting.future.set_running_or_notify_cancel():  # not cancelled meanwhile
                waiting.future.set_exception(BatcherClosed("the batcher was closed"))

    # --- the model thread ---------------------------------------------------------
    def _ready(self) -> list[_Waiting]:
        """The first waiting turn of each chat, in arrival order."""
        seen: set[tuple[str, str]] = set()
        ready = []
        for waiting in self._waiting:
            chat = chat_of(waiting.turn)
            if chat not in seen:
                seen.add(chat)
                ready.append(waiting)
        return ready

    def _next_batch(self) -> list[_Waiting]:
        with self._changed:
            while True:
                if self._closed:
                    return []
                ready = self._ready()
                if ready:
                    expected = self.size
                    if self._last_chats:
                        chats = self._last_chats | {chat_of(w.turn) for w in ready}
                        expected = min(self.size, len(chats))
                    since = max(ready[0].arrived, self._free_since)
                    remaining = since + self.window_s - time.monotonic()
                    if len(ready) >= expected or remaining <= 0:
                        break
                    self._changed.wait(remaining)
                else:
                    self._changed.wait()
            batch = ready[: self.size]
            taken = {id(w) for w in batch}
            self._waiting = [w for w in self._waiting if id(w) not in taken]
            return batch

    def _run(self) -> None:
        while batch := self._next_batch():
            live = [w for w in batch if w.future.set_running_or_notify_cancel()]
            try:
                if live:
                    log.debug("answering %d turns together", len(live))
                    BATCH_TURNS.observe(len(live))
                    replies = self.answer([w.turn for w in live])
                    if len(replies) != len(live):
                        raise RuntimeError(f"{len(replies)} replies for {len(live)} turns")
                    for waiting, reply in zip(live, replies, strict=True):
                        waiting.future.set_result(reply)
            except Exception as error:  # every turn of the batch learns why
                for waiting in live:
                    if not waiting.future.done():
                        waiting.future.set_exception(error)
            finally:
                with self._changed:
                    self._last_chats = {chat_of(w.turn) for w in batch}
                    self._free_since = time.monotonic()
