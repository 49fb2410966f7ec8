"""The prompt the LLM sees: who it is, what the person feels (HEF-style guidance from
the small emotion model), the plan, and the recent conversation."""

from __future__ import annotations

import re
from collections.abc import Callable

from engine.planning import ReplyPlan
from engine.safety.injection import neutralise
from engine.types import HistoryTurn, Perception

# Short and in the second person: a 135M model follows little more than that, and
# narrates ("The person is hurting...") when told about "the person".
SYSTEM_PROMPT = (
    "You are StickerBot, a caring friend chatting with someone. "
    "Talk to them directly, in one or two short sentences."
)

# Text the model sometimes copies from the prompt's sticker notes, or decorations it adds.
_BRACKETED = re.compile(r"\[[^\]]*\]|\([^)]*sticker[^)]*\)", re.IGNORECASE)
_SPEAKER_PREFIX = re.compile(r"^\s*(stickerbot|assistant|bot)\s*:\s*", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def guidance(perception: Perception, plan: ReplyPlan) -> str:
    """The line that tells the LLM what the emotion model found and what to do."""
    feeling = f"They feel {perception.emotion.value}"
    if perception.cause_words:
        feeling += f" (because of: {', '.join(perception.cause_words)})"
    return f"{feeling}. {plan.instruction}"


def describe_user_turn(text: str, media_descriptions: list[str]) -> str:
    """The user message as the LLM reads it; typed control tokens are made inert."""
    parts = [text.strip()] if text.strip() else []
    parts += [f"[sent {d}]" for d in media_descriptions]
    return neutralise(" ".join(parts)) or "[sent nothing]"


def build_messages(
    history: list[HistoryTurn], text: str, perception: Perception, plan: ReplyPlan
) -> list[dict[str, str]]:
    """Chat messages for the LLM: system prompt with guidance, history, the new turn.

    Only the first message is the system role; whatever a person wrote stays in user
    turns, with control tokens neutralised (engine.safety.injection)."""
    messages = [{"role": "system",
                 "content": neutralise(f"{SYSTEM_PROMPT}\n{guidance(perception, plan)}")}]
    for turn in history:
        content = neutralise(turn.text.strip())
        if turn.sticker_description:
            content = f"{content} [sticker: {neutralise(turn.sticker_description)}]".strip()
        if content:
            role = "assistant" if turn.role == "bot" else "user"
            messages.append({"role": role, "content": content})
    messages.append(
        {"role": "user", "content": describe_user_turn(text, perception.media_descriptions)}
    )
    return messages


def clean_reply(text: str) -> str:
    """Strip what the model copied from the prompt format; keep the words."""
    text = _SPEAKER_PREFIX.sub("", text)
    text = _BRACKETED.sub(" ", text)
    # Hashtags and wrapping quotes are decoration the small model adds.
    text = text.replace("#", "").replace('"', "")
    return _SPACES.sub(" ", text).strip()


# Tokens one prompt may hold before earlier turns are dropped and the new turn is cut:
# a 4000-character message of emoji is ~10k tokens, a minute of prefill on 2 cores.
MAX_PROMPT_TOKENS = 1024
_CUT_MARK = " [...]"


def fit_messages(messages: list[dict[str, str]], count: Callable[[list[dict[str, str]]], int],
                 limit: int = MAX_PROMPT_TOKENS,
                 cut: Callable[[str, int], str] | None = None) -> list[dict[str, str]]:
    """The messages shortened to at most `limit` tokens as counted by `count` (the whole
    templated prompt): the oldest history turns go first, then the new turn's text is cut
    to fit (`cut(text, tokens)` keeps its first `tokens` tokens). The system message and
    the new turn always stay."""
    out = list(messages)
    while count(out) > limit and len(out) > 2:
        del out[1]
    last = out[-1]
    keep = count([last])
    # Re-tokenising a cut text can count a little differently (a split emoji): shrink
    # until it fits, a few rounds at most.
    for _ in range(8):
        over = count(out) - limit
        if over <= 0 or cut is None or keep <= 16:
            break
        keep = max(16, keep - over - 8)
        text = cut(last["content"], keep).rstrip().rstrip("\ufffd")
        out[-1] = {**last, "content": text + _CUT_MARK}
    return out
