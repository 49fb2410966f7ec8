"""The user and system agents of Agent4SC: profile, memory, plan and action.

Each agent has
- a profile: the user's persona, situation and emotion; the system's empathetic role;
- memory: a short-term summary of the dialogue, refreshed every two turns, and
  long-term reflections (one line on what the agent has learnt), every `reflect_every`;
- plan: intention (use a sticker or not, and why), query (a description of the wanted
  sticker) and select (one of the top-K retrieved stickers, with a reason);
- action: the message and the sticker.

The action's text comes first and the plan works on it, so the chosen sticker is planned
for the message it goes with. Every structured step is small and prompted with two
worked examples, because SmolLM2-135M follows examples far better than instructions.
A step whose answer stays malformed after its re-asks falls back to a documented
default (intention: no sticker; query: the message itself; select: the top hit) and the
fallback is counted in the session's counters, never hidden.

The functions here take several sessions at once, so one batched LLM call serves a
whole block of sessions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from engine.backends import BackendError, ChatBackend, Conversation, complete_structured
from engine.stickers import Sticker
from training.simulator.profiles import Profile

SYSTEM_PROFILE = ("You are a warm, empathetic friend. You listen, show you understand "
                  "the other person's feelings, and gently support them.")


@dataclass
class Utterance:
    role: str  # "user" or "system"
    text: str
    sticker: Sticker | None = None
    sticker_reason: str = ""


@dataclass
class Memory:
    summary: str = ""
    reflections: list[str] = field(default_factory=list)


@dataclass
class Session:
    """One simulated dialogue in progress."""

    session_id: str
    index: int
    profile: Profile
    shard: int
    split: str
    seed: int
    utterances: list[Utterance] = field(default_factory=list)
    memory: dict[str, Memory] = field(default_factory=lambda: {"user": Memory(),
                                                               "system": Memory()})
    counters: Counter = field(default_factory=Counter)
    turns: int = 0
    closed: bool = False
    close_reason: str = ""

    def last_of(self, role: str) -> Utterance | None:
        return next((u for u in reversed(self.utterances) if u.role == role), None)

    def transcript(self, last: int | None = None) -> str:
        items = self.utterances if last is None else self.utterances[-last:]
        return "\n".join(f"{'User' if u.role == 'user' else 'Friend'}: {u.text}" for u in items)


@dataclass
class Config:
    """Token budgets and sampling of the agents' steps."""

    message_tokens: int = 40
    plan_tokens: int = 28
    memory_tokens: int = 40
    temperature: float = 0.7
    plan_temperature: float = 0.3
    max_reasks: int = 2
    history: int = 4  # recent messages shown verbatim; older ones live in the summary
    reflect_every: int = 4


# --- action: the message ------------------------------------------------------------

_FEELING = {"anger": "angry", "disgust": "disgusted", "fear": "afraid",
            "happiness": "happy", "neutral": "calm", "sadness": "sad",
            "surprise": "surprised"}
_SPEAKER = re.compile(r"^\s*(you|user|friend|person|me|system|assistant)\s*:\s*", re.I)


def _persona(session: Session, role: str, hint: str) -> str:
    memory = session.memory[role]
    if role == "user":
        p = session.profile
        text = (f"Pretend to be this person. {p.persona} Today: {p.situation} You feel "
                f"{_FEELING[p.emotion.value]}. Tell your friend about it in one or two short "
                f"sentences.")
    else:
        text = SYSTEM_PROFILE + " Reply in one or two short sentences."
    if memory.summary:
        text += f" So far: {memory.summary}"
    if memory.reflections:
        text += f" You noted: {memory.reflections[-1]}"
    if hint:  # here, not in the last message: small models echo the last message
        text += f" {hint}"
    return text


def message_prompt(session: Session, role: str, config: Config, hint: str = "") -> Conversation:
    """The agent's chat: its profile as system prompt, the other side's lines as `user`.

    The user agent is opened by the friend asking what happened (tiny models narrate the
    situation far more often when asked than when told to start).
    """
    messages: Conversation = [{"role": "system", "content": _persona(session, role, hint)}]
    recent = session.utterances[-config.history:]
    if role == "user" and (not recent or recent[0].role == "user"):
        feeling = _FEELING[session.profile.emotion.value]
        messages.append({"role": "user", "content": f"Hey, you look {feeling}. What happened?"})
    for u in recent:
        messages.append({"role": "assistant" if u.role == role else "user", "content": u.text})
    return messages


def clean_message(text: str) -> str:
    """First paragraph, without a speaker prefix or wrapping quotes the model added."""
    text = text.strip().split("\n\n")[0].strip()
    text = _SPEAKER.sub("", text).strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return " ".join(text.split())


# --- plan: intention, query, select -------------------------------------------------

class Intention(BaseModel):
    use_sticker: bool
    reason: str = Field(default="", max_length=300)


class Query(BaseModel):
    query: str = Field(min_length=3, max_length=200)


class Selection(BaseModel):
    index: int = Field(ge=0)
    reason: str = Field(default="", max_length=300)


def _shots(pairs: list[tuple[str, str]], question: str) -> Conversation:
    messages: Conversation = [{"role": "system", "content": "You answer with one JSON object "
                                                            "only."}]
    for asked, answered in pairs:
        messages += [{"role": "user", "content": asked}, {"role": "assistant",
                                                          "content": answered}]
    return messages + [{"role": "user", "content": question}]


# The "no" example comes first: SmolLM2 leans towards the last example's answer, and
# with "no" last it almost never chose a sticker (5 of 46 messages in a trial run).
_INTENTION_SHOTS = [
    ('Message: "Can you tell me what time the shop opens?"\nShould a sticker go with this '
     'message?', '{"use_sticker": false, "reason": "a plain question needs no sticker"}'),
    ('Message: "I passed my driving test today!"\nShould a sticker go with this message?',
     '{"use_sticker": true, "reason": "a cheerful sticker shares the joy"}'),
    ('Message: "I am so sorry, that must hurt a lot."\nShould a sticker go with this message?',
     '{"use_sticker": true, "reason": "a hug sticker shows comfort"}'),
    ('Message: "I feel a bit nervous about tomorrow."\nShould a sticker go with this message?',
     '{"use_sticker": true, "reason": "a calming sticker eases the worry"}'),
]
_QUERY_SHOTS = [
    ('Message: "I passed my driving test today!"\nDescribe the sticker to send.',
     '{"query": "a happy face celebrating with confetti"}'),
    ('Message: "I am so sorry, that sounds really hard."\nDescribe the sticker to send.',
     '{"query": "a sad face giving a comforting hug"}'),
]
_SELECT_SHOTS = [
    ('Message: "I passed my driving test today!"\nStickers:\n0. a crying face\n1. a party '
     'popper with confetti\n2. an angry face\nWhich sticker fits best?',
     '{"index": 1, "reason": "confetti celebrates the good news"}'),
]


def _lenient_bool(text: str) -> dict | None:
    words = text.lower()
    if words.startswith("yes") or '"true' in words or ": true" in words:
        return {"use_sticker": True, "reason": text[:200]}
    if words.startswith("no") or '"false' in words or ": false" in words:
        return {"use_sticker": False, "reason": text[:200]}
    return None


def _lenient_index(text: str) -> dict | None:
    for token in text.replace(".", " ").replace(",", " ").split():
        if token.isdigit():
            return {"index": int(token), "reason": text[:200]}
    return None


@dataclass
class StickerPlan:
    sticker: Sticker | None
    intention: str = ""
    query: str = ""
    reason: str = ""
    candidates: list[str] = field(default_factory=list)


def describe(sticker: Sticker) -> str:
    return f"{sticker.name}: {sticker.content_description}"


def plan_stickers(backend: ChatBackend, tool, items: list[tuple[Session, str]],
                  config: Config, *, seed: int) -> list[StickerPlan]:
    """Intention -> query -> top-K retrieval from the session's shard -> select.

    `items` holds (session, message) pairs whose speaker may send a sticker now.
    """
    plans = [StickerPlan(None) for _ in items]
    if not items:
        return plans
    intents = complete_structured(
        backend, [_shots(_INTENTION_SHOTS, f'Message: "{m}"\nShould a sticker go with this '
                                           f'message?') for _, m in items],
        Intention, max_tokens=config.plan_tokens, temperature=config.plan_temperature,
        seed=seed, max_reasks=config.max_reasks, lenient=_lenient_bool)
    chosen = []
    for i, ((session, _), answer) in enumerate(zip(items, intents, strict=True)):
        session.counters["reasks"] += max(0, answer.attempts - 1)
        if answer.value is None:
            session.counters["fallback_intention"] += 1  # default: no sticker
            continue
        plans[i].intention = answer.value.reason
        session.counters["intention_yes" if answer.value.use_sticker else "intention_no"] += 1
        if answer.value.use_sticker:
            chosen.append(i)
    if not chosen:
        return plans
    queries = complete_structured(
        backend, [_shots(_QUERY_SHOTS, f'Message: "{items[i][1]}"\nDescribe the sticker to '
                                       f'send.') for i in chosen],
        Query, max_tokens=config.plan_tokens, temperature=config.plan_temperature,
        seed=seed + 1, max_reasks=config.max_reasks)
    candidates: dict[int, list[Sticker]] = {}
    for i, answer in zip(chosen, queries, strict=True):
        session, message = items[i]
        session.counters["reasks"] += max(0, answer.attempts - 1)
        if answer.value is None:
            session.counters["fallback_query"] += 1  # default: search with the message
            query = message
        else:
            query = answer.value.query
        plans[i].query = query
        candidates[i] = tool.search(session.shard, query)
        plans[i].candidates = [s.id for s in candidates[i]]
    asked = [i for i in chosen if candidates[i]]
    prompts = []
    for i in asked:
        listing = "\n".join(f"{n}. {describe(s)}" for n, s in enumerate(candidates[i]))
        prompts.append(_shots(_SELECT_SHOTS, f'Message: "{items[i][1]}"\nStickers:\n{listing}\n'
                                             f'Which sticker fits best?'))
    picks = complete_structured(backend, prompts, Selection, max_tokens=config.plan_tokens,
                                temperature=config.plan_temperature, seed=seed + 2,
                                max_reasks=config.max_reasks, lenient=_lenient_index)
    for i, answer in zip(asked, picks, strict=True):
        session = items[i][0]
        session.counters["reasks"] += max(0, answer.attempts - 1)
        options = candidates[i]
        if answer.value is None or answer.value.index >= len(options):
            session.counters["fallback_select"] += 1  # default: the best retrieval hit
            plans[i].sticker, plans[i].reason = options[0], "top retrieval hit (fallback)"
        else:
            plans[i].sticker = options[answer.value.index]
            plans[i].reason = answer.value.reason
    return plans


# --- memory -------------------------------------------------------------------------

def summary_prompt(session: Session, role: str) -> Conversation:
    who = "the user" if role == "user" else "the friend"
    return [{"role": "system", "content": "You summarise conversations in one sentence."},
            {"role": "user", "content": f"Conversation:\n{session.transcript(8)}\n\nSummarise "
                                        f"it in one short sentence for {who}."}]


def reflection_prompt(session: Session, role: str) -> Conversation:
    other = "the friend" if role == "user" else "the user"
    return [{"role": "system", "content": "You reflect on conversations in one sentence."},
            {"role": "user", "content": f"Conversation so far: {session.memory[role].summary}\n"
                                        f"{session.transcript(4)}\n\nIn one sentence: what "
                                        f"have you learnt about {other} and how they feel?"}]


def refresh_memory(backend: ChatBackend, sessions: list[Session], config: Config, *,
                   seed: int) -> None:
    """Short-term summaries for both agents of every session; reflections when due."""
    jobs = [(s, role) for s in sessions for role in ("user", "system")]
    if not jobs:
        return
    try:
        results = backend.complete([summary_prompt(s, r) for s, r in jobs],
                                   max_tokens=config.memory_tokens, temperature=0.3, seed=seed)
    except BackendError:
        for session in sessions:
            session.counters["fallback_memory"] += 1  # default: keep the old summary
        return
    for (session, role), result in zip(jobs, results, strict=True):
        session.memory[role].summary = result.text or session.memory[role].summary
    due = [(s, r) for s, r in jobs if config.reflect_every and s.turns % config.reflect_every
           == 0]
    if due:
        try:
            results = backend.complete([reflection_prompt(s, r) for s, r in due],
                                       max_tokens=config.memory_tokens, temperature=0.3,
                                       seed=seed + 1)
        except BackendError:
            for session in {id(s): s for s, _ in due}.values():
                session.counters["fallback_memory"] += 1  # default: no new reflection
            return
        for (session, role), result in zip(due, results, strict=True):
            if result.text:
                session.memory[role].reflections.append(result.text)
