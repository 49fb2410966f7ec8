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
