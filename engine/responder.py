"""The responder: one fixed order of steps from a person's turn to the bot's reply.

perceive -> plan the reply's emotion -> decide on a sticker -> generate (text and
sticker) -> assemble the Reply. Components are passed in, never fetched inside;
`load_responder` builds the default ones from settings.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.planning import plan_reply, should_send_sticker, sticker_overdue
from engine.prompting import build_messages
from engine.reply_model import ReplyModel, ReplyRequest
from engine.safety.check_in import SafetyState
from engine.safety.policy import CRISIS_VERSION, SafetyDecision
from engine.types import NEGATIVE_EMOTIONS, Emotion, HistoryTurn, Perception, Reply, UserTurn

if TYPE_CHECKING:
    from PIL import Image

    from engine.perception import Perceiver
    from engine.safety.policy import SafetyPolicy
    from engine.settings import EngineSettings

log = logging.getLogger(__name__)

# Said when the model produced nothing usable (empty after cleaning): better a plain
# kind sentence than silence.
FALLBACK_TEXT = "I'm here with you. Tell me more?"
# The person's earlier messages read for their mood: while one of these was sad or
# afraid, the bot's stickers stay gentle (engine.reply_model.RetrievalReplyModel.suits).
EARLIER_TURNS = 2
# A death, however calmly told: "today I made my nonna's lasagna, first time since she
# died" reads as neutral to the emotion model, and is no moment for a grin.
_DEATH = re.compile(
    r"\b(?:(?<!phone )(?<!battery )(?<!laptop )(?<!car )(?<!plant )(?:died|dies)"
    r"|passed away|passed on|funeral|miscarriage|memorial|put to sleep|terminal"
    r"|put (?:him|her|them|(?:our|my|the) (?:old )?(?:dog|cat|pup|puppy|rabbit|bunny|horse|"
    r"pony|boy|girl)) down"
    # "since mum passed", "my dad passed on friday"; not "she passed her test", "my
    # sister passed!!" (more often an exam) or "he passed out"
    r"|(?:(?:since|when) (?:my |our )?\w+|mum|mom|mother|dad|father|nan|nana|gran|granny|"
    r"grandma|grandad|grandpa|grandmother|grandfather|husband|wife|uncle|aunt|auntie|dog|"
    r"cat) passed(?! (?:the|my|an?|his|her|their|it|out|by|me|him|them|through|over|up|"
    r"along|with|away from)\b)"
    r"|lost (?:my|our|his|her) (?:mum|mom|mother|dad|"
    r"father|nan|nonna|gran|grandma|grandad|grandpa|grandfather|grandmother|husband|wife|"
    r"partner|son|daughter|baby|brother|sister|friend|best friend|dog|cat)|since (?:he|"
    r"she|they) (?:died|passed|left us))\b", re.IGNORECASE)
# Other losses that are no moment for a grin either, though they do not set the tone of
# the turns after them the way a death does.
_OTHER_LOSS = re.compile(r"\b(?:diagnosed|lost (?:my|our|his|her) job)\b", re.IGNORECASE)


# A death told this many of the person's messages ago still sets the tone (planning's
# `grieving`): the memories that follow it read as calm, and are not.
LOSS_TURNS = 6


def speaks_of_loss(text: str) -> bool:
    return bool(_DEATH.search(text) or _OTHER_LOSS.search(text))


def grieving(history: list[HistoryTurn], text: str) -> bool:
    """Whether this message or one of the person's last LOSS_TURNS told of a death."""
    earlier = [t.text for t in history if t.role == "user"][-LOSS_TURNS:]
    return any(_DEATH.search(t) for t in [*earlier, text])


@dataclass
class ConversationState:
    """What the responder needs to know about the conversation so far."""

    history: list[HistoryTurn] = field(default_factory=list)
    bot_turns: int = 0
    bot_sticker_turns: int = 0
    recent_sticker_ids: list[str] = field(default_factory=list)
    stickers_enabled: bool = True
    safety: SafetyState = field(default_factory=SafetyState)  # the last check-in, if any

    @property
    def last_bot_turn_had_sticker(self) -> bool:
        for turn in reversed(self.history):
            if turn.role == "bot":
                return turn.sticker_id is not None
        return False


@dataclass
class PendingTurn:
    turn: UserTurn
    state: ConversationState
    images: dict[str, Image.Image] | None = None


def turn_images(turn: UserTurn, images: dict[str, Image.Image] | None) -> list[Image.Image]:
    """The decoded pictures of a turn in the order they were sent (keyed by media path)."""
    if not images:
        return []
    return [images[m.path] for m in turn.media if m.path in images]


class Responder:
    def __init__(self, perceiver: Perceiver, model: ReplyModel, *, sticker_rate: float,
                 safety: SafetyPolicy) -> None:
        self.perceiver = perceiver
        self.model = model
        self.sticker_rate = sticker_rate
        self.safety = safety  # crisis replies before generation, output checks after

    @property
    def version(self) -> str:
        return self.model.version

    def respond(
        self,
        turn: UserTurn,
        state: ConversationState | None = None,
        images: dict[str, Image.Image] | None = None,
    ) -> Reply:
        return self.respond_batch([PendingTurn(turn, state or ConversationState(), images)])[0]

    def respond_batch(self, pending: list[PendingTurn]) -> list[Reply]:
        """Answer several independent turns with one batched generation."""
        started = time.perf_counter()
        perceptions = self.perceiver.perceive_batch([p.turn for p in pending],
                                                    [p.images for p in pending])
        plans = [plan_reply(perception, grieving=grieving(p.state.history, p.turn.text))
                 for p, perception in zip(pending, perceptions, strict=True)]
        hurting = [before or speaks_of_loss(p.turn.text) for p, before in zip(
            pending, self.hurting_before([p.state.history for p in pending]), strict=True)]
        decisions = self.safety.decide([p.turn for p in pending], perceptions,
                                       [p.state.history for p in pending],
                                       [p.state.safety for p in pending])
        requests = []
        for p, perception, plan, decision, before in zip(pending, perceptions, plans,
                                                         decisions, hurting, strict=True):
            if decision.action != "reply":
                continue  # answered with a written safety reply, not by the model
            want_sticker = should_send_sticker(
                target_rate=self.sticker_rate,
                bot_turns=p.state.bot_turns,
                bot_sticker_turns=p.state.bot_sticker_turns,
                # A model that chooses its own stickers may send two in a row.
                last_bot_turn_had_sticker=(p.state.last_bot_turn_had_sticker
                                           and not getattr(self.model, "chooses_stickers",
                                                           False)),
                user_sent_sticker=p.turn.has_sticker,
                # Not on the answer to a check-in nor right after the crisis reply: no
                # playful picture after "are you safe?" or a list of helplines.
                enabled=(p.turn.stickers_enabled and p.state.stickers_enabled
                         and p.state.safety.awaiting_answer is None
                         and not p.state.safety.after_crisis_reply),
            )
            overdue = want_sticker and sticker_overdue(
                target_rate=self.sticker_rate,
                bot_turns=p.state.bot_turns,
                bot_sticker_turns=p.state.bot_sticker_turns,
            )
            requests.append(
                ReplyRequest(
                    messages=build_messages(p.state.history, p.turn.text, perception, plan),
                    plan=plan,
                    want_sticker=want_sticker,
                    exclude_sticker_ids=frozenset(p.state.recent_sticker_ids),
                    force_sticker=overdue,
                    images=turn_images(p.turn, p.images),
                    upset=before or plan.user_emotion in NEGATIVE_EMOTIONS,
                )
            )
        outputs = iter(self.model.reply(requests) if requests else [])
        answered = iter(requests)
        latency_ms = int((time.perf_counter() - started) * 1000)
        replies = []
        for p, perception, plan, decision in zip(pending, perceptions, plans, decisions,
                                                 strict=True):
            if decision.action != "reply":
                replies.append(self._safety_reply(p.turn, perception, decision, latency_ms))
                continue
            output, request = next(outputs), next(answered)
            reviewed = self.safety.review(p.turn, output.text, output.sticker,
                                          request.messages[0]["content"])
            text, sticker, note = reviewed.text, reviewed.sticker, reviewed.note
            if not text:
                log.warning("model gave an empty reply; using the fallback sentence")
                text = FALLBACK_TEXT
            replies.append(
                Reply(
                    text=text,
                    sticker=sticker,
                    user_emotion=perception.emotion,
                    user_valence=perception.valence,
                    planned_emotion=plan.emotion,
                    cause_words=perception.cause_words,
                    latency_ms=latency_ms,
                    model_version=self.model.version,
                    safety_note=note,
                )
            )
        return replies

    def hurting_before(self, histories: list[list[HistoryTurn]]) -> list[bool]:
        """Per conversation: whether one of the person's last EARLIER_TURNS messages was
        sad, afraid, angry or disgusted, or told of a loss. Memory gives back the emotion
        perceived when each message came; only turns without one (older memory, training
        dialogues) go through the emotion model, in one batched pass."""
        turns = [[t for t in history if t.role == "user" and (t.text.strip() or t.emotion)]
                 [-EARLIER_TURNS:] for history in histories]
        unread = [t.text for group in turns for t in group if t.emotion is None]
        read = iter(p.emotion for p in self.perceiver.classifier.predict(unread)) \
            if unread else iter(())
        hurting = []
        for group in turns:
            emotions = [t.emotion if t.emotion is not None else next(read) for t in group]
            hurting.append(any(emotion in NEGATIVE_EMOTIONS or speaks_of_loss(t.text)
                               for t, emotion in zip(group, emotions, strict=True)))
        return hurting

    def _safety_reply(self, turn: UserTurn, perception: Perception, decision: SafetyDecision,
                      latency_ms: int) -> Reply:
        """The written crisis reply, check-in question or answer about what the bot is:
        never generated, no sticker."""
        if decision.action == "honest":
            assert decision.answer is not None
            text = decision.answer
        elif decision.action == "follow_up":
            log.warning("safety: %s on turn %s", decision.note, turn.task_id)
            text = self.safety.follow_up_text(decision.target, turn)
        else:
            assert decision.label is not None
            log.warning("safety: %s (%s) on turn %s", decision.action, decision.label,
                        turn.task_id)
            text = (self.safety.crisis_text(decision.label, turn)
                    if decision.action == "crisis"
                    else self.safety.check_in_text(decision.target, turn))
        return Reply(
            text=text,
            sticker=None,  # never a playful sticker
            user_emotion=perception.emotion,
            user_valence=perception.valence,
            planned_emotion=Emotion.neutral,
            cause_words=perception.cause_words,
            latency_ms=latency_ms,
            model_version=CRISIS_VERSION,
            safety=decision.label,
            safety_note=decision.note,
        )


def load_responder(settings: EngineSettings) -> Responder:
    """Build the default responder from local models and the built sticker library."""
    from engine.embeddings import TextEncoder
    from engine.emotion import EmotionClassifier
    from engine.fast_llm import load_chat_llm
    from engine.llm import LLMConfig
    from engine.pegs.reply import served_checkpoint
    from engine.perception import Perceiver
    from engine.reply_model import RetrievalReplyModel
    from engine.stickers import StickerIndex, StickerLibrary

    encoder = TextEncoder(settings.embedding_model_path or None)
    encoder.encode(["warm up"])  # load MiniLM now, not on the first person's message
    library = StickerLibrary.load(settings.stickers_dir)
    index = StickerIndex.load(settings.stickers_dir, library, encoder)
    classifier = EmotionClassifier.load(encoder)
    perceiver = Perceiver(classifier, library, ocr=settings.ocr)
    checkpoint = served_checkpoint(settings)
    model: ReplyModel
    if settings.reply_llm == "openai":  # replies from a server (issue 19)
        from engine.openai_reply import load_openai_reply_model

        model = load_openai_reply_model(settings, library, index)
    elif checkpoint is not None and settings.reply_model in ("tool", "text-only"):
        from engine.pegs.reply import load_pegs_reply_model
        from engine.pegs.tool_reply import ToolReplyModel

        pegs = load_pegs_reply_model(settings, library, checkpoint)
        model = ToolReplyModel(pegs.model, library, index, config=pegs.config,
                               use_tool=settings.reply_model == "tool")
    elif checkpoint is not None:
        from engine.pegs.reply import load_pegs_reply_model

        model = load_pegs_reply_model(settings, library, checkpoint)
    else:
        from engine.tuned_llm import chat_llm_path

        llm = load_chat_llm(
            LLMConfig(
                path=chat_llm_path(settings),
                cache_dir=settings.model_cache_dir,
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                seed=settings.seed,
            ),
            settings.llm_engine,  # ct2 (engine/fast_llm.py) or torch
        )
        # The tuned default LLM chooses its own stickers (engine/reply_model.py).
        model = RetrievalReplyModel(llm, library, index,
                                    sticker_actions=not settings.llm_path and settings.llm_tuned)
    log.info("reply model %s", model.version)
    from engine.safety.policy import load_safety_policy

    safety = load_safety_policy(settings, encoder, library)
    return Responder(perceiver, model, sticker_rate=settings.sticker_rate, safety=safety)
