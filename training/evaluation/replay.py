"""`stickerbot evaluate --split FILE --replay SYSTEM`: the split's dialogues answered now by
the bot as it serves, one responder per named system, all in one run.

    tuned    the retrieval reply model on the corpus-tuned SmolLM2 (the default)
    untuned  the same on the untuned SmolLM2 (stickers by plan and reply words)
    pegs     PEGS cpu-small, the committed checkpoint
    corpus   the split's own bot turns, scored like a system: the ceiling the metrics allow
             (e.g. a dialogue labelled sad may still end in a laugh)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from training.evaluation.items import EvalItem

log = logging.getLogger(__name__)

SYSTEMS = {
    "tuned": {"reply_model": "retrieval", "llm_tuned": True},
    "untuned": {"reply_model": "retrieval", "llm_tuned": False},
    "pegs": {"reply_model": "pegs"},
    "corpus": None,
}


def replay_systems(settings: Any, split: Path, systems: list[str], library: Any, *,
                   dialogues: int | None = None) -> list[EvalItem]:
    from engine.responder import load_responder
    from training.data import read_sessions
    from training.evaluation.conversation import replay_split

    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise SystemExit(f"--replay {unknown[0]}: choose from {', '.join(SYSTEMS)}")
    sessions = read_sessions(split)[:dialogues] if dialogues else read_sessions(split)
    items: list[EvalItem] = []
    for system in dict.fromkeys(systems):
        if system == "corpus":
            items += corpus_items(sessions)
            continue
        responder = load_responder(settings.model_copy(update=SYSTEMS[system]))
        started = time.perf_counter()

        def progress(done: int, total: int, system: str = system,
                     started: float = started) -> None:
            if done % 40 < 8 or done == total:
                print(f"{system}: {done}/{total} turns answered, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)

        items += replay_split(responder, sessions, system, library,
                              memory_turns=settings.memory_turns, progress=progress)
        del responder
    return items



def corpus_items(sessions: list[dict[str, Any]]) -> list[EvalItem]:
    """The split's own bot turns as the replies of system "corpus"."""
    from training.evaluation.items import Turn
    from training.evaluation.run import _sticker_id, _sticker_text

    items = []
    for index, session in enumerate(sessions):
        context: list[Turn] = []
        for number, turn in enumerate(session["conversation"]):
            context.append(Turn("user", turn.get("user_message") or "",
                                _sticker_text(turn.get("user_sticker"))))
            sticker = _sticker_id(turn.get("system_sticker"))
            items.append(EvalItem(
                item_id=f"{index}:{number}", system="corpus", context=list(context[-7:]),
                text=turn.get("system_message") or "", sticker_id=sticker,
                sticker_description=_sticker_text(turn.get("system_sticker")),
                reference_text=None, reference_sticker_id=sticker,  # no text metrics on itself
                meta={"user_emotion": session.get("user_emotion"),
                      "session": session.get("session_id"), "turn": number}))
            context.append(Turn("assistant", turn.get("system_message") or "",
                                _sticker_text(turn.get("system_sticker"))))
    return items
