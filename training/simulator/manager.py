"""The manager agent: quality assurance and process control of every simulated dialogue.

Quality assurance
- a sticker that does not fit its context is dropped: the cosine of MiniLM embeddings
  of the message (with the line it answers) and the sticker's description must reach
  `sticker_fit`. An embedding check, not an LLM one, because SmolLM2-135M answers
  "does this fit?" with "yes" almost always;
- a speaker never sends stickers in two consecutive turns (the plan is skipped);
- a reply that is empty, longer than `max_words`, or repeats an earlier message of the
  session (ROUGE-L >= `repeat_rouge_l`) is generated again with a hint, up to
  `reply_retries` times; from retry `escalate_after` on, the stronger configured model
  (if any) writes it. A reply still failing is accepted clipped to `max_words` and
  counted (`reply_rejected`), so the stats show how often the rules could not be met.

Process control: every `check_every` turns (from `min_turns` on) the manager asks the
LLM whether the dialogue has come to its end; at `max_turns` (default 6) it closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from engine.backends import BackendError, ChatBackend, complete_structured
from training.simulator.agents import (
    Config,
    Session,
    StickerPlan,
    _shots,
    clean_message,
    message_prompt,
)
from training.simulator.profiles import rouge_l


@dataclass
class ManagerConfig:
    max_turns: int = 6
    min_turns: int = 2
    check_every: int = 2
    max_words: int = 60
    repeat_rouge_l: float = 0.7
    reply_retries: int = 2
    escalate_after: int = 1
    sticker_fit: float = 0.1


class CloseDecision(BaseModel):
    close: bool
    reason: str = Field(default="", max_length=300)


_CLOSE_SHOTS = [
    ("Conversation:\nUser: I got the job!\nFriend: Congratulations, you earned it!\nUser: "
     "Thanks so much, I feel great now. Bye!\nFriend: Enjoy it! Talk soon.\nHas this "
     "conversation come to a natural end?",
     '{"close": true, "reason": "the user feels better and they said goodbye"}'),
    ("Conversation:\nUser: My dog died this morning.\nFriend: I am so sorry. What was his "
     "name?\nHas this conversation come to a natural end?",
     '{"close": false, "reason": "the friend just asked a question"}'),
]

FALLBACK_REPLY = {"user": "I am not sure what to say.", "system": "I am here for you."}


def clip_words(text: str, limit: int) -> str:
    words = text.split()
    return text if len(words) <= limit else " ".join(words[:limit])


class Manager:
    def __init__(self, backend: ChatBackend, tool, *, config: ManagerConfig | None = None,
                 agent_config: Config | None = None,
                 escalation: ChatBackend | None = None) -> None:
        self.backend = backend
        self.escalation = escalation
        self.tool = tool
        self.config = config or ManagerConfig()
        self.agent_config = agent_config or Config()

    # --- replies --------------------------------------------------------------------
    def reply_problem(self, text: str, session: Session) -> str:
        """'' if the reply passes, else 'empty', 'too_long' or 'repeat'."""
        if not text.strip():
            return "empty"
        if len(text.split()) > self.config.max_words:
            return "too_long"
        for earlier in session.utterances:
            if rouge_l(text, earlier.text) >= self.config.repeat_rouge_l:
                return "repeat"
        return ""

    def write_replies(self, role: str, sessions: list[Session], *, seed: int) -> list[str]:
        """One checked reply per session, retried and escalated as the docstring says."""
        texts: list[str | None] = [None] * len(sessions)
        last: list[str] = [""] * len(sessions)
        hints = [""] * len(sessions)
        pending = list(range(len(sessions)))
        for attempt in range(self.config.reply_retries + 1):
            if not pending:
                break
            stronger = (self.escalation is not None and attempt > 0
                        and attempt >= self.config.escalate_after)
            backend = self.escalation if stronger else self.backend
            prompts = [message_prompt(sessions[i], role, self.agent_config, hints[i])
                       for i in pending]
            try:
                results = [clean_message(r.text) for r in backend.complete(
                    prompts, max_tokens=self.agent_config.message_tokens,
                    temperature=self.agent_config.temperature, seed=seed + attempt)]
            except BackendError:
                results = [""] * len(pending)
            still = []
            for i, text in zip(pending, results, strict=True):
                session = sessions[i]
                if attempt:
                    session.counters["reply_retries"] += 1
                    if stronger:
                        session.counters["reply_escalations"] += 1
                problem = self.reply_problem(text, session)
                if not problem:
                    texts[i] = text
                    continue
                session.counters[f"reply_{problem}"] += 1
                last[i] = text or last[i]
                hints[i] = {"empty": "Always answer.",
                            "too_long": f"Use fewer than {self.config.max_words // 2} words.",
                            "repeat": "Say something new: never repeat earlier messages."
                            }[problem]
                still.append(i)
            pending = still
        for i in pending:
            sessions[i].counters["reply_rejected"] += 1
            texts[i] = clip_words(last[i], self.config.max_words) or FALLBACK_REPLY[role]
        return [t or FALLBACK_REPLY[role] for t in texts]

    # --- stickers -------------------------------------------------------------------
    def may_send_sticker(self, session: Session, role: str) -> bool:
        """No stickers in two consecutive turns of one speaker."""
        last = session.last_of(role)
        if last is not None and last.sticker is not None:
            session.counters["sticker_blocked_consecutive"] += 1
            return False
        return True

    def check_stickers(self, items: list[tuple[Session, str]], plans: list[StickerPlan]
                       ) -> list[StickerPlan]:
        """Drop stickers that do not fit their message and the line it answers."""
        checks = []
        for n, ((session, message), plan) in enumerate(zip(items, plans, strict=True)):
            if plan.sticker is None:
                continue
            if plan.sticker.id not in self.tool.shards[session.shard].ids:
                raise AssertionError("a sticker from outside the session's database")
            before = session.utterances[-1].text if session.utterances else ""
            checks.append((n, f"{before} {message}".strip()))
        scores = self.tool.similarities([(text, plans[n].sticker) for n, text in checks])
        for (n, _), score in zip(checks, scores, strict=True):
            if score < self.config.sticker_fit:
                items[n][0].counters["sticker_dropped_context"] += 1
                plans[n] = StickerPlan(None, intention=plans[n].intention,
                                       query=plans[n].query, candidates=plans[n].candidates,
                                       reason=f"dropped: fit {score:.2f}")
        return plans

    # --- process control ------------------------------------------------------------
    def close_finished(self, sessions: list[Session], *, seed: int) -> None:
        """Close sessions at max_turns; ask the LLM about the others every check_every."""
        ask = []
        for session in sessions:
            if session.turns >= self.config.max_turns:
                session.closed, session.close_reason = True, "max_turns"
            elif (session.turns >= self.config.min_turns
                  and session.turns % self.config.check_every == 0):
                ask.append(session)
        if not ask:
            return
        prompts = [_shots(_CLOSE_SHOTS, f"Conversation:\n{s.transcript(6)}\nHas this "
                                        f"conversation come to a natural end?") for s in ask]
        answers = complete_structured(self.backend, prompts, CloseDecision,
                                      max_tokens=self.agent_config.plan_tokens,
                                      temperature=0.2, seed=seed,
                                      max_reasks=self.agent_config.max_reasks)
        for session, answer in zip(ask, answers, strict=True):
            session.counters["close_checks"] += 1
            session.counters["reasks"] += max(0, answer.attempts - 1)
            if answer.value is None:
                session.counters["fallback_close"] += 1  # default: go on talking
            elif answer.value.close:
                session.closed, session.close_reason = True, "manager"
