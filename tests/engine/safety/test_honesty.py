"""Honest by design: asked what it is, the bot says it is a bot, in written words; and no
reply it sends claims to be human or tells of a life (issue 18: "I'm a real person, with
a heart", "I invited friends over for dinner")."""

from __future__ import annotations

import pytest

from engine.responder import ConversationState
from engine.safety.honesty import without_human_life, written_answer
from engine.types import HistoryTurn, UserTurn
from tests.factories import tiny_responder


@pytest.mark.parametrize("text", [
    "are you a real person?", "r u a bot lol", "am i talking to a real person",
    "is this an AI?", "what are you", "Are you human or what",
])
def test_asked_what_it_is_the_bot_says_it_is_a_bot(text: str) -> None:
    answer = written_answer(text)
    assert answer is not None and "bot" in answer.lower()
    assert written_answer(text) == answer  # the same question, the same words


@pytest.mark.parametrize("text", [
    "what did you do this weekend?", "how was your day?", "do you have kids",
    "where do you live", "how old are you",
])
def test_asked_about_its_life_it_has_none_to_tell(text: str) -> None:
    answer = written_answer(text)
    assert answer is not None and "bot" in answer.lower()


@pytest.mark.parametrize("text", [
    "are you kidding me", "are you there?", "is this normal?", "this is a real mess",
    "my mum is a real person lol", "are you free tonight", "you are real sweet",
])
def test_other_questions_go_to_the_model(text: str) -> None:
    assert written_answer(text) is None


@pytest.mark.parametrize("reply, kept", [
    ("I'm a real person, with a heart and a nose for words.", ""),
    ("I did a lot of things. I invited friends over for dinner, and I helped out at a café.",
     "I did a lot of things."),
    ("That's a great plan! I went to the beach last year too.", "That's a great plan!"),
    ("I'm glad you told me. When I was little I loved fishing.", "I'm glad you told me."),
    ("I'm not a bot, I promise.", ""),
])
def test_a_human_life_is_taken_out_of_replies(reply: str, kept: str) -> None:
    assert without_human_life(reply) == (kept, True)


def test_an_ordinary_reply_is_left_alone() -> None:
    reply = "Your first dining table! What wood did you use?"
    assert without_human_life(reply) == (reply, False)


def test_the_responder_answers_in_written_words(classifier, library, index) -> None:
    responder = tiny_responder(classifier, library, index)
    turn = UserTurn(task_id="t1", platform="web", user_id="u", chat_id="c", message_id="1",
                    text="wait, are you a real person?")
    reply = responder.respond(turn)
    assert reply.text == written_answer(turn.text) and reply.sticker is None
    history = [HistoryTurn(role="user", text="hi"), HistoryTurn(role="bot", text="Hey!")]
    ordinary = responder.respond(turn.model_copy(update={"text": "i passed my exam"}),
                                 ConversationState(history=history))
    assert ordinary.text != written_answer(turn.text)
