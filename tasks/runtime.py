"""What a worker process holds: the models (loaded once) and the stores.

`Runtime.handle_batch` is the body of the `respond` task: idempotency check, memory,
the responder (one batched generation for turns of different chats), and persistence
of both turns of each exchange.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from PIL import Image

from engine.media import MediaError, MediaLimits, decode_file
from engine.responder import ConversationState, PendingTurn, Responder, load_responder
from engine.safety.check_in import COOLDOWN_TURNS, SafetyState
from engine.types import Reply, UserTurn
from storage.db import Database
from storage.memory import ConversationMemory, SqlMemory, history_of
from storage.redis_memory import RedisMemory
from storage.transcript import TranscriptStore
from tasks.settings import TaskSettings

log = logging.getLogger(__name__)

# How many of the bot's recent stickers are not repeated.
NO_REPEAT_WINDOW = 20


@dataclass
class Runtime:
    settings: TaskSettings
    responder: Responder
    db: Database
    transcripts: TranscriptStore
    memory: ConversationMemory

    @classmethod
    def load(cls, settings: TaskSettings, responder: Responder | None = None) -> Runtime:
        db = Database(settings.resolved_database_url)
        db.migrate()
        memory: ConversationMemory = SqlMemory(db)
        cache = None
        if settings.redis_url:
            # Recent turns from Redis; PostgreSQL stays the record it is rebuilt from.
            cache = memory = RedisMemory.from_url(settings.redis_url, db,
                                                  settings.memory_cache_turns,
                                                  settings.memory_ttl_s)
        return cls(
            settings=settings,
            responder=responder or load_responder(settings),
            db=db,
            transcripts=TranscriptStore(db, memory_cache=cache),
            memory=memory,
        )

    def handle(self, turn: UserTurn) -> Reply:
        return self.handle_batch([turn])[0]

    def handle_batch(self, turns: list[UserTurn]) -> list[Reply]:
        """Answer turns together, one batched generation per round. A round takes at most
        one turn of each chat, so a chat's later turn is answered after (and with the
        memory of) its earlier one."""
        replies: dict[int, Reply] = {}
        for round_ in rounds(turns):
            for index, reply in zip(round_, self._handle_round([turns[i] for i in round_]),
                                    strict=True):
                replies[index] = reply
        return [replies[i] for i in range(len(turns))]

    def _handle_round(self, turns: list[UserTurn]) -> list[Reply]:
        started = time.perf_counter()
        replies: list[Reply | None] = []
        pending: list[PendingTurn] = []
        for turn in turns:
            existing = self.transcripts.find_reply(turn)
            if existing is not None:
                log.info("turn %s was answered before; returning the stored reply",
                         turn.task_id)
            else:
                pending.append(PendingTurn(turn, self._state(turn), self._images(turn)))
            replies.append(existing)
        made = iter(self.responder.respond_batch(pending) if pending else [])
        latency_ms = int((time.perf_counter() - started) * 1000)
        for i, turn in enumerate(turns):
            if replies[i] is None:
                reply = next(made)
                reply.latency_ms = latency_ms
                replies[i] = self._record(turn, reply)
        return [reply for reply in replies if reply is not None]

    def _state(self, turn: UserTurn) -> ConversationState:
        key = (turn.platform, turn.chat_id, turn.user_id)
        bot_turns, bot_sticker_turns = self.transcripts.bot_sticker_stats(*key)
        return ConversationState(
            history=self.memory.recent(*key, self.settings.memory_turns),
            bot_turns=bot_turns,
            bot_sticker_turns=bot_sticker_turns,
            recent_sticker_ids=self.transcripts.recent_bot_sticker_ids(*key, NO_REPEAT_WINDOW),
            stickers_enabled=self.transcripts.stickers_enabled(turn.platform, turn.user_id),
            safety=SafetyState.from_bot_labels(
                self.transcripts.bot_safety_labels(*key, COOLDOWN_TURNS)),
        )

    def _record(self, turn: UserTurn, reply: Reply) -> Reply:
        if not self.transcripts.record_exchange(turn, None, reply):
            # A copy of this task (redelivered while we ran) stored its reply first: that
            # one is the answer, so every copy returns the same.
            return self.transcripts.find_reply(turn) or reply
        if isinstance(self.memory, RedisMemory):
            self.memory.append(turn.platform, turn.chat_id, turn.user_id,
                               history_of(turn, reply))
        return reply

    def _images(self, turn: UserTurn) -> dict[str, Image.Image]:
        """Decode the turn's media that the library does not already describe."""
        limits = MediaLimits.from_settings(self.settings)
        images = {}
        for media in turn.media:
            if media.library_id:
                continue
            try:
                images[media.path] = decode_file(media.path, limits).image
            except (MediaError, OSError) as error:
                # The adapter validated it on arrival; a file gone bad since is described
                # as "an image" rather than failing the reply.
                log.warning("could not decode stored media %s: %s", media.path, error)
        return images


def rounds(turns: list[UserTurn]) -> list[list[int]]:
    """Indices of `turns` in rounds: the n-th turn of each chat goes in round n (a copy of
    the same task counts as a later turn of its chat)."""
    seen: dict[tuple[str, str], int] = {}
    out: list[list[int]] = []
    for index, turn in enumerate(turns):
        chat = (turn.platform, turn.chat_id)
        n = seen.get(chat, 0)
        seen[chat] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(index)
    return out


_runtime: Runtime | None = None
_settings: TaskSettings | None = None


def init_runtime(settings: TaskSettings, responder: Responder | None = None) -> Runtime:
    """Load the models once for this process (a worker, or the embedded server)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime.load(settings, responder)
    return _runtime


def runtime_loaded() -> bool:
    return _runtime is not None


def load_on_first_use(settings: TaskSettings) -> None:
    """The settings `get_runtime` loads the models with, in a process that has not loaded
    them yet (a worker's process, or one whose pool sends no worker_process_init)."""
    global _settings
    _settings = settings


def get_runtime() -> Runtime:
    if _runtime is None:
        if _settings is None:
            raise RuntimeError("no models loaded: call init_runtime(settings) or "
                               "load_on_first_use(settings) first")
        return init_runtime(_settings)
    return _runtime


def reset_runtime() -> None:
    global _runtime, _settings
    if _runtime is not None:
        _runtime.db.dispose()
    _runtime = _settings = None
