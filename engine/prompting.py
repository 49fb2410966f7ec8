"""The prompt the LLM sees: who it is, what the person feels (HEF-style guidance from
the small emotion model), the plan, and the recent conversation."""

from __future__ import annotations

import re

from engine.planning import ReplyPlan
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
    parts = [text.strip()] if text.strip() else []
    parts += [f"[sent {d}]" for d in media_descriptions]
    return " ".join(parts) or "[sent nothing]"


def build_messages(
    history: list[HistoryTurn], text: str, perception: Perception, plan: ReplyPlan
) -> list[dict[str, str]]:
    """Chat messages for the LLM: system prompt with guidance, history, the new turn."""
    messages = [{"role": "system", "content": f"{SYSTEM_PROMPT}\n{guidance(perception, plan)}"}]
    for turn in history:
        content = turn.text.strip()
        if turn.sticker_description:
            content = f"{content} [sticker: {turn.sticker_description}]".strip()
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
