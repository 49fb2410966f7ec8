from engine.planning import plan_reply, should_send_sticker, sticker_overdue
from engine.types import NEGATIVE_EMOTIONS, Emotion, Perception


def perceived(emotion: Emotion, valence: float = 0.0) -> Perception:
    return Perception(emotion=emotion, valence=valence, confidence=0.9)


def test_positive_emotions_are_mirrored():
    assert plan_reply(perceived(Emotion.happiness, 0.8)).emotion == Emotion.happiness
    assert plan_reply(perceived(Emotion.happiness, 0.8)).intent == "mirror"
    assert plan_reply(perceived(Emotion.surprise, 0.5)).emotion == Emotion.surprise


def test_negative_emotions_are_acknowledged_and_comforted_not_mirrored():
    for emotion in NEGATIVE_EMOTIONS:
        plan = plan_reply(perceived(emotion, -0.7))
        assert plan.emotion not in NEGATIVE_EMOTIONS
        assert plan.intent in ("comfort", "calm")
        assert "Acknowledge" in plan.instruction
        assert not any(e in NEGATIVE_EMOTIONS for e in plan.sticker_emotions)


def test_unpleasant_surprise_is_met_like_a_worry():
    plan = plan_reply(perceived(Emotion.surprise, -0.8))
    assert plan.intent == "comfort"
    assert plan.user_emotion == Emotion.fear


def test_after_a_loss_a_calm_or_glad_memory_is_held_gently():
    for emotion, valence in ((Emotion.neutral, 0.0), (Emotion.happiness, 0.6),
                             (Emotion.surprise, 0.3)):
        plan = plan_reply(perceived(emotion, valence), grieving=True)
        assert plan.intent == "comfort", emotion
        assert plan.emotion == Emotion.neutral
        assert plan.user_emotion == emotion  # what they feel is still told truly
    sad = plan_reply(perceived(Emotion.sadness, -0.7), grieving=True)
    assert sad == plan_reply(perceived(Emotion.sadness, -0.7))


def test_plan_sticker_fit():
    plan = plan_reply(perceived(Emotion.sadness, -0.6))
    assert plan.sticker_fits(plan.emotion)
    assert not plan.sticker_fits(Emotion.anger)


def simulate(turns: int, user_sends_sticker: bool, rate: float = 0.6) -> list[bool]:
    sent: list[bool] = []
    for _ in range(turns):
        sent.append(should_send_sticker(
            target_rate=rate, bot_turns=len(sent), bot_sticker_turns=sum(sent),
            last_bot_turn_had_sticker=bool(sent and sent[-1]),
            user_sent_sticker=user_sends_sticker,
        ))
    return sent


def test_rate_converges_on_target_when_user_keeps_sending_stickers():
    sent = simulate(100, user_sends_sticker=True)
    assert abs(sum(sent) / len(sent) - 0.6) < 0.02
    assert sent[0], "the first reply may carry a sticker"


def test_never_two_consecutive_sticker_turns_for_a_text_only_user():
    sent = simulate(50, user_sends_sticker=False)
    assert not any(a and b for a, b in zip(sent, sent[1:], strict=False))
    assert sum(sent) >= 20


def test_disabled_or_zero_rate_sends_none():
    assert not any(simulate(10, True, rate=0.0))
    assert not should_send_sticker(target_rate=0.6, bot_turns=0, bot_sticker_turns=0,
                                   last_bot_turn_had_sticker=False, user_sent_sticker=True,
                                   enabled=False)


def test_a_model_that_never_asks_is_forced_back_to_the_rate_within_one_sticker():
    """PEGS decides on its own stickers; when it never asks, forcing the overdue ones
    still keeps the conversation within one sticker of the target rate."""
    sent: list[bool] = []
    for _ in range(60):
        allowed = should_send_sticker(
            target_rate=0.6, bot_turns=len(sent), bot_sticker_turns=sum(sent),
            last_bot_turn_had_sticker=bool(sent and sent[-1]), user_sent_sticker=True)
        forced = allowed and sticker_overdue(target_rate=0.6, bot_turns=len(sent),
                                             bot_sticker_turns=sum(sent))
        sent.append(forced)
        assert sum(sent) >= 0.6 * len(sent) - 1
    assert not sent[0], "within the slack the model decides: nothing is forced at first"
    assert not sticker_overdue(target_rate=0.0, bot_turns=10, bot_sticker_turns=0)
