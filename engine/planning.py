"""Reply planning: the emotion a reply carries, and whether a sticker goes with it.

The emotion plan follows MIME (Majumder et al., 2020): empathetic listeners mirror
positive emotions, while negative ones are acknowledged and answered with comfort
rather than mirrored. The sticker decision keeps the bot's sticker rate near a target
(0.6 in the human STICKERCONV dialogues) and avoids stickers in two consecutive bot
turns unless the person keeps sending stickers.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import NEGATIVE_EMOTIONS, Emotion, Perception


@dataclass(frozen=True)
class ReplyPlan:
    """What the reply should do, decided before any text is generated."""

    user_emotion: Emotion
    emotion: Emotion  # the emotion the reply (tone and sticker) carries
    intent: str  # "mirror" | "engage" | "comfort" | "calm"
    instruction: str  # one line of guidance for the LLM
    sticker_query: str  # what a fitting sticker shows, for retrieval
    sticker_emotions: tuple[Emotion, ...]  # emotions a fitting sticker may carry, best first

    def sticker_fits(self, emotion: Emotion) -> bool:
        return emotion in self.sticker_emotions


_FEELING_WORDS = {
    Emotion.anger: "angry",
    Emotion.disgust: "disgusted",
    Emotion.fear: "scared",
    Emotion.sadness: "sad",
}


# The neutral plan's words, which the tuned LLM learnt.
_ENGAGE = "Respond kindly, show interest, and ask a gentle question."


def plan_reply(perception: Perception, *, grieving: bool = False) -> ReplyPlan:
    """Choose the reply's emotion and intent from what the user feels. `grieving`: the
    conversation told of a death or a loss a few turns ago."""
    felt = perception.emotion
    if felt == Emotion.surprise and perception.valence < -0.2:
        felt = Emotion.fear  # an unpleasant surprise is met like a worry, not mirrored
    if grieving and felt not in NEGATIVE_EMOTIONS:
        # "he taught me to fish", the day after he died, reads as neutral or even happy:
        # a memory to hold gently, not news to match with a grin or a gasp. (The words
        # are the neutral plan's; the sticker comforts.)
        return ReplyPlan(
            felt, Emotion.neutral, "comfort",
            _ENGAGE,
            "a gentle warm hug, caring and remembering together",
            (Emotion.happiness, Emotion.neutral),
        )

    if felt == Emotion.happiness:
        return ReplyPlan(
            felt, Emotion.happiness, "mirror",
            "Share their joy warmly, and ask one light follow-up question.",
            "celebrate and share someone's joy, happy and cheerful",
            (Emotion.happiness,),
        )
    if felt == Emotion.surprise:
        return ReplyPlan(
            felt, Emotion.surprise, "mirror",
            "Match their amazement and ask what happened.",
            "amazed and excited, wow, what a surprise",
            (Emotion.surprise, Emotion.happiness),
        )
    if felt == Emotion.neutral:
        return ReplyPlan(
            felt, Emotion.neutral, "engage",
            _ENGAGE,
            "friendly and attentive, listening with interest",
            (Emotion.neutral, Emotion.happiness),
        )
    feeling = _FEELING_WORDS[felt]
    if felt in (Emotion.anger, Emotion.disgust):
        return ReplyPlan(
            felt, Emotion.neutral, "calm",
            f"Acknowledge that they feel {feeling} and why; stay calm and on their side, "
            "and offer support without lecturing.",
            f"calm support for someone who is {feeling}, take a deep breath, I am on your side",
            (Emotion.neutral, Emotion.happiness),
        )
    return ReplyPlan(
        felt, Emotion.happiness, "comfort",
        f"Acknowledge that they feel {feeling} and why, then comfort and encourage them "
        "gently. Do not be cheerful about their problem.",
        f"a warm hug to comfort someone who is {feeling}, care and support",
        (Emotion.happiness, Emotion.neutral),
    )


def should_send_sticker(
    *,
    target_rate: float,
    bot_turns: int,
    bot_sticker_turns: int,
    last_bot_turn_had_sticker: bool,
    user_sent_sticker: bool,
    enabled: bool = True,
) -> bool:
    """Decide whether this bot turn carries a sticker.

    Error diffusion on the running rate: send while the stickers sent so far fall short
    of `target_rate` of the bot turns including this one, so the rate converges on the
    target without randomness.
    """
    if not enabled or target_rate <= 0:
        return False
    if last_bot_turn_had_sticker and not user_sent_sticker:
        return False
    return bot_sticker_turns < target_rate * (bot_turns + 1)


def sticker_overdue(*, target_rate: float, bot_turns: int, bot_sticker_turns: int) -> bool:
    """For a model that decides on its own stickers (PEGS): true once the conversation has
    fallen more than one whole sticker behind `target_rate`, when the allowed sticker is
    forced. Within that slack the model's [IMG] token decides."""
    return target_rate > 0 and bot_sticker_turns + 1 < target_rate * (bot_turns + 1)
