"""The responder reads the person's earlier messages for their mood, so that its stickers
stay gentle while they are hurting."""

from __future__ import annotations

from engine.types import HistoryTurn
from tests.factories import tiny_responder


def test_the_mood_of_the_earlier_messages_is_read(classifier, library, index) -> None:
    responder = tiny_responder(classifier, library, index)
    grief = [HistoryTurn(role="user", text="my dad died last week and I can't stop crying"),
             HistoryTurn(role="bot", text="I'm so sorry. That's so much to carry.")]
    party = [HistoryTurn(role="user", text="we won the league!! best day ever"),
             HistoryTurn(role="bot", text="Champions!")]
    long_ago = grief + [HistoryTurn(role="user", text=text) for text in
                        ("we won the league!! best day ever", "pizza tonight, so happy")]
    assert responder.hurting_before([grief, party, [], long_ago]) == [True, False, False,
                                                                      False]


def test_a_loss_told_calmly_counts_as_hurting(classifier, library, index) -> None:
    from engine.responder import speaks_of_loss

    assert speaks_of_loss("today i made my nonna's lasagna. first time since she died")
    assert speaks_of_loss("we had to put him down this morning")
    assert speaks_of_loss("we had to put our dog down this morning")
    assert speaks_of_loss("first christmas since mum passed")
    assert speaks_of_loss("my dad passed on friday")
    assert not speaks_of_loss("my phone died lol") and not speaks_of_loss("dying to see it")
    assert not speaks_of_loss("she passed her driving test!")
    assert not speaks_of_loss("he passed out at the party lol")
    assert not speaks_of_loss("put the baby down for a nap finally")
    responder = tiny_responder(classifier, library, index)
    told = [HistoryTurn(role="user", text="first christmas since my grandad passed away"),
            HistoryTurn(role="bot", text="That's a big first.")]
    assert responder.hurting_before([told]) == [True]


def test_the_mood_memory_kept_is_trusted(classifier, library, index) -> None:
    """Memory gives back the emotion perceived when each message came (a crying sticker
    with no words included): no second reading of the same messages."""
    responder = tiny_responder(classifier, library, index)
    crying_sticker = [HistoryTurn(role="user", text="", emotion="sadness"),
                      HistoryTurn(role="bot", text="Oh no, what happened?")]
    calm = [HistoryTurn(role="user", text="so that's that", emotion="neutral")]
    read: list[list[str]] = []
    predict = responder.perceiver.classifier.predict
    responder.perceiver.classifier.predict = lambda texts: read.append(texts) or predict(texts)
    try:
        assert responder.hurting_before([crying_sticker, calm]) == [True, False]
    finally:
        del responder.perceiver.classifier.predict
    assert read == []


def test_a_loss_sets_the_tone_for_several_messages() -> None:
    from engine.responder import LOSS_TURNS, grieving

    told = [HistoryTurn(role="user", text="my grandad died last night"),
            HistoryTurn(role="bot", text="I'm so sorry.")]
    memories = [HistoryTurn(role=role, text=text) for _ in range(LOSS_TURNS - 1)
                for role, text in (("user", "he taught me to fish"), ("bot", "Tell me."))]
    assert grieving(told, "he taught me to fish")
    assert grieving(told + memories, "we went every sunday")
    later = told + memories + memories[:2]
    assert not grieving(later, "anyway what should i cook tonight")
    assert grieving([], "first christmas since she passed away")
    assert not grieving([], "he taught me to fish")
    # A lost job hurts, but the party sticker that follows it may be mirrored.
    assert not grieving([HistoryTurn(role="user", text="I just lost my job")], "🎉")
