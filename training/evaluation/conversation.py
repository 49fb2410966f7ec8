"""What a person notices in the bot's replies: repeats, echoes, wrong tone, an invented
human life, cut-off text, and how the stickers are used.

`replay_split` sends every user turn of a STICKERCONV split through a real `Responder`
(perception, safety, planning, reply model, sticker control), one dialogue at a time
and with the bot's OWN earlier replies as history, as a person would get them; the
split's bot turns serve as references. `conversation_metrics` scores any `EvalItem`s
(replayed, predictions, or logged transcripts).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from engine.types import Emotion, Media, MediaKind, Perception, UserTurn
from training.evaluation.items import EvalItem, Turn
from training.evaluation.text_metrics import rouge_l, tokenize

POSITIVE = {Emotion.happiness.value}
NEGATIVE = {Emotion.sadness.value, Emotion.fear.value, Emotion.anger.value,
            Emotion.disgust.value}
# Valence (engine.emotion, -1..1) a reply must pass to count as cheer or as sorrow;
# chosen so that the validation split's own bot turns are almost never flagged.
CHEER, SORROW = 0.5, -0.5

_SENTENCE = re.compile(r"[^.!?\u2026\n]+[.!?\u2026]*")
_WORD = re.compile(r"[a-z0-9']+")
# Things only a person with a body, a home and a past says about itself.
_HUMAN_LIFE = re.compile(
    r"\b(?:my (?:wife|husband|girlfriend|boyfriend|partner|kids?|son|daughter|mom|mum|dad|"
    r"mother|father|sister|brother|family|boss|job|coworkers?|colleagues?|apartment|flat|"
    r"house|car|dog|cat|childhood|school|hometown|weekend|body)"
    r"|when i was (?:a kid|young|little|your age|in (?:school|college|high school))"
    r"|i (?:went|go|drove|walked|ran) to (?:the |my )?(?:gym|office|work|school|store|shop|"
    r"park|beach|bed|doctor|party)"
    r"|i(?:'m| am) (?:a (?:morning|night) person|married|single|a (?:mom|dad|parent|student|"
    r"teacher|nurse))"
    r"|i (?:ate|cooked|slept|woke up|got out of bed|had (?:breakfast|lunch|dinner))"
    r"|i (?:love|hate) getting out of bed"
    r"|i(?:'ve| have) been there myself|happened to me (?:too|once|last))",
    re.IGNORECASE)
# Stickers made for comfort (a hug, a heart, a teddy bear) suit bad news whatever their
# emotion label: the library files the hugging face under happiness.
_COMFORT = re.compile(r"\b(comfort|hug|support|sympath|caring|there for)", re.IGNORECASE)
# A reply that stops on one of these (or on a comma) was cut off mid-thought.
_HANGING = {"and", "or", "but", "the", "a", "an", "to", "of", "with", "for", "my", "your",
            "is", "are", "that", "so", "because", "if", "in", "on", "at"}


# --- per reply --------------------------------------------------------------------------
def sentences(text: str) -> list[str]:
    """The text's sentences of three words or more, lower-cased, words only."""
    out = []
    for raw in _SENTENCE.findall(text):
        words = _WORD.findall(raw.lower())
        if len(words) >= 3:
            out.append(" ".join(words))
    return out


def last_turn(context: Sequence[Turn], role: str) -> Turn | None:
    return next((t for t in reversed(context) if t.role == role), None)


def repeats_sentence(item: EvalItem) -> bool:
    """A sentence said twice within the reply, or already said in the bot's previous turn."""
    own = sentences(item.text)
    previous = last_turn(item.context, "assistant")
    before = set(sentences(previous.text)) if previous else set()
    return len(own) != len(set(own)) or any(s in before for s in own)


def echoes_user(item: EvalItem, threshold: float = 0.8) -> bool:
    """A sentence of the reply that is the person's own sentence copied back."""
    user = last_turn(item.context, "user")
    if user is None:
        return False
    theirs = [tokenize(s) for s in sentences(user.text) if len(s.split()) >= 4]
    return any(rouge_l(tokenize(mine), t) >= threshold
               for mine in sentences(item.text) for t in theirs)


def talks_of_human_life(text: str) -> bool:
    return bool(_HUMAN_LIFE.search(text))


def empty_or_cut(text: str, fallback: str = "") -> bool:
    words = _WORD.findall(text.lower())
    if not words or (fallback and text.strip() == fallback):
        return True
    stripped = text.rstrip()
    return stripped.endswith((",", ":", ";", "-")) or (
        stripped[-1:].isalpha() and words[-1] in _HANGING)


def dialogue_valence(item: EvalItem, valence_of: Callable[[str], float]) -> str | None:
    """"good" or "bad" news: the dialogue's labelled emotion, else the person's last turn."""
    emotion = item.meta.get("user_emotion")
    if emotion in POSITIVE:
        return "good"
    if emotion in NEGATIVE:
        return "bad"
    if emotion is None:
        user = last_turn(item.context, "user")
        value = valence_of(user.text) if user and user.text.strip() else 0.0
        return "good" if value >= CHEER else "bad" if value <= SORROW else None
    return None


def wrong_valence(item: EvalItem, news: str | None, valence_of: Callable[[str], float]) -> bool:
    """Sorrow at good news, cheer at bad news (the emotion model reads the reply)."""
    if news is None or not item.text.strip() or item.meta.get("safety"):
        return False
    value = valence_of(item.text)
    return (news == "good" and value <= SORROW) or (news == "bad" and value >= CHEER)


# --- over a system's replies -----------------------------------------------------------
def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _group(emotion: str | None) -> str:
    return "positive" if emotion in POSITIVE else "negative" if emotion in NEGATIVE else "other"


def sticker_metrics(items: Sequence[EvalItem], library: Any,
                    news: Sequence[str | None]) -> dict[str, Any]:
    def emotion_of(sticker_id: str | None) -> str | None:
        if not sticker_id or library is None or sticker_id not in library:
            return None
        return library.get(sticker_id).emotion.value

    def mood(sticker_id: str | None) -> str:
        """positive, negative, comfort or other."""
        if not sticker_id or library is None or sticker_id not in library:
            return "other"
        sticker = library.get(sticker_id)
        words = f"{sticker.recommendation} {sticker.emotion_description}"
        return "comfort" if _COMFORT.search(words) else _group(sticker.emotion.value)

    replies = [i for i in items if not i.meta.get("safety")]
    sent = [i for i in replies if i.has_sticker]
    first = [i for i in replies if not any(t.role == "assistant" for t in i.context)]
    counts = Counter(i.sticker_id or i.sticker_path for i in sent)
    gold = [i for i in sent if i.reference_sticker_id]
    planned = [i for i in sent if i.meta.get("plan_emotions")]
    clash = [(n == "good" and mood(i.sticker_id) == "negative")
             or (n == "bad" and mood(i.sticker_id) == "positive")
             for i, n in zip(items, news, strict=True)
             if i.has_sticker and not i.meta.get("safety")]
    return {
        "sticker_rate": _rate([i.has_sticker for i in replies]),
        "sticker_rate_first_turn": _rate([i.has_sticker for i in first]),
        "sticker_fit_news": None if not clash else 1 - sum(clash) / len(clash),
        "sticker_fit_gold": _rate([mood(i.sticker_id) == mood(i.reference_sticker_id)
                                   for i in gold]),
        "sticker_same_as_gold": _rate([i.sticker_id == i.reference_sticker_id for i in gold]),
        "sticker_fit_plan": _rate([emotion_of(i.sticker_id) in i.meta["plan_emotions"]
                                   for i in planned]),
        "distinct_stickers_per_100": 100 * len(counts) / len(replies) if replies else None,
        "top_sticker_share": counts.most_common(1)[0][1] / len(sent) if sent else None,
        "top_sticker": counts.most_common(1)[0][0] if sent else None,
        "stickers_sent": len(sent),
    }


def conversation_metrics(items: Sequence[EvalItem], valence_of: Callable[[str], float],
                         library: Any = None, fallback: str = "") -> dict[str, Any]:
    """Failure rates per reply and sticker use, for one system's replies."""
    news = [dialogue_valence(i, valence_of) for i in items]
    replies = [(i, n) for i, n in zip(items, news, strict=True) if not i.meta.get("safety")]
    return {
        "replies": len(items),
        "safety_replies": sum(1 for i in items if i.meta.get("safety")),
        "repeated_sentence": _rate([repeats_sentence(i) for i, _ in replies]),
        "echo": _rate([echoes_user(i) for i, _ in replies]),
        "wrong_valence": _rate([wrong_valence(i, n, valence_of) for i, n in replies]),
        "human_life": _rate([talks_of_human_life(i.text) for i, _ in replies]),
        "empty_or_cut_off": _rate([empty_or_cut(i.text, fallback) for i, _ in replies]),
        **sticker_metrics(items, library, news),
    }


# --- replaying a split through a responder ------------------------------------------------
def _user_turn(session_index: int, number: int, turn: dict[str, Any], library: Any) -> UserTurn:
    sticker = turn.get("user_sticker")
    media = []
    if sticker and library is not None:
        from training.data import sticker_of

        found = sticker_of(sticker, library)
        if found is not None:
            media = [Media(kind=MediaKind.sticker, path=str(library.png_file(found.id)),
                           format="png", emoji=found.emoji, library_id=found.id)]
    return UserTurn(platform="eval", chat_id=str(session_index), user_id=str(session_index),
                    message_id=str(number), text=str(turn.get("user_message") or ""),
                    media=media)


def replay_split(responder: Any, sessions: list[dict[str, Any]], system: str, library: Any, *,
                 memory_turns: int = 6, batch_size: int = 8,
                 progress: Callable[[int, int], None] | None = None) -> list[EvalItem]:
    """Every dialogue of `sessions` answered turn by turn by `responder`; the n-th turns of
    several dialogues go in one batch, as concurrent chats do."""
    from engine.planning import plan_reply
    from engine.responder import ConversationState, PendingTurn, grieving
    from engine.safety.check_in import SafetyState
    from storage.memory import history_of
    from training.evaluation.run import _sticker_id, _sticker_text

    history: list[list] = [[] for _ in sessions]
    contexts: list[list[Turn]] = [[] for _ in sessions]
    stickers: list[list[str | None]] = [[] for _ in sessions]
    labels: list[list[str | None]] = [[] for _ in sessions]
    items: list[EvalItem] = []
    total, done = sum(len(s["conversation"]) for s in sessions), 0
    longest = max((len(s["conversation"]) for s in sessions), default=0)
    for number in range(longest):
        active = [i for i, s in enumerate(sessions) if number < len(s["conversation"])]
        for start in range(0, len(active), batch_size):
            chunk = active[start:start + batch_size]
            pending = []
            for i in chunk:
                turn = _user_turn(i, number, sessions[i]["conversation"][number], library)
                sent = [s for s in stickers[i] if s]
                pending.append(PendingTurn(turn, ConversationState(
                    history=history[i][-memory_turns:], bot_turns=len(stickers[i]),
                    bot_sticker_turns=len(sent), recent_sticker_ids=sent[-20:],
                    safety=SafetyState.from_bot_labels(labels[i][::-1]))))
            replies = responder.respond_batch(pending)
            for i, p, reply in zip(chunk, pending, replies, strict=True):
                gold = sessions[i]["conversation"][number]
                contexts[i].append(Turn("user", p.turn.text,
                                        _sticker_text(gold.get("user_sticker"))))
                # The plan the responder made, from what it perceived (no second look).
                plan = plan_reply(Perception(emotion=reply.user_emotion,
                                             valence=reply.user_valence, confidence=1.0),
                                  grieving=grieving(p.state.history, p.turn.text))
                items.append(EvalItem(
                    item_id=f"{i}:{number}", system=system, context=list(contexts[i][-7:]),
                    text=reply.text, sticker_id=reply.sticker.id if reply.sticker else None,
                    sticker_description=reply.sticker.description if reply.sticker else None,
                    reference_text=gold.get("system_message") or "",
                    reference_sticker_id=_sticker_id(gold.get("system_sticker")),
                    meta={"user_emotion": sessions[i].get("user_emotion"),
                          "session": sessions[i].get("session_id"), "turn": number,
                          "safety": reply.safety,
                          "plan_emotions": ([e.value for e in plan.sticker_emotions]
                                            if reply.sticker else None)}))
                contexts[i].append(Turn("assistant", reply.text,
                                        reply.sticker.description if reply.sticker else None))
                history[i] += history_of(p.turn, reply)
                stickers[i].append(reply.sticker.id if reply.sticker else None)
                labels[i].append(reply.safety)
            done += len(chunk)
            if progress:
                progress(done, total)
    return items


def side_by_side(items: Sequence[EvalItem], library: Any = None, dialogues: int = 20) -> str:
    """The first `dialogues` replayed dialogues as a person reads them: each user turn, then
    every system's reply (and the corpus's own) beside each other."""
    def sticker(sticker_id: str | None, description: str | None) -> str:
        if not sticker_id:
            return ""
        if library is not None and sticker_id in library:
            found = library.get(sticker_id)
            return f" [{found.emoji} {found.name}]"
        return f" [{description or sticker_id}]"

    turns: dict[tuple[str, int], dict[str, EvalItem]] = {}
    for item in items:
        if "session" in item.meta and item.system != "corpus":
            turns.setdefault((item.meta["session"], item.meta["turn"]), {})[item.system] = item
    systems = sorted({i.system for i in items} - {"corpus"})  # the corpus has its own line
    sessions = list(dict.fromkeys(session for session, _ in turns))[:dialogues]
    lines = ["# Side by side", "",
             f"The first {len(sessions)} dialogues; each system heard the same person but "
             "remembers its own replies.", ""]
    for session in sessions:
        numbers = sorted(n for s, n in turns if s == session)
        first = next(iter(turns[(session, numbers[0])].values()))
        lines += [f"## {session} ({first.meta.get('user_emotion')})", ""]
        for number in numbers:
            row = turns[(session, number)]
            sample = next(iter(row.values()))
            user = last_turn(sample.context, "user")
            said = (user.text if user else "") + (f" [sticker: {user.sticker}]"
                                                  if user and user.sticker else "")
            lines.append(f"**Person:** {said.strip()}  ")
            for system in systems:
                if system in row:
                    reply = row[system]
                    lines.append(f"*{system}:* {reply.text}"
                                 f"{sticker(reply.sticker_id, reply.sticker_description)}  ")
            lines += [f"*corpus:* {sample.reference_text}"
                      f"{sticker(sample.reference_sticker_id, None)}", ""]
    return "\n".join(lines) + "\n"
