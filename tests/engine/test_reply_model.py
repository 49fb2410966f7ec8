"""The retrieval reply model takes the sticker a tuned LLM asks for, within what the
sticker-rate control allows; an untuned LLM's stickers come from the plan."""

from __future__ import annotations

from engine.llm import Generation
from engine.planning import ReplyPlan
from engine.reply_model import ReplyRequest, RetrievalReplyModel, find_action
from engine.types import Emotion


class ScriptedLLM:
    """Answers with fixed text, as a tuned model that wrote a sticker action would."""

    version = "scripted"

    def __init__(self, text: str) -> None:
        self.text = text

    def generate(self, conversations: list) -> list[Generation]:
        return [Generation(self.text, 12, 0.1) for _ in conversations]


def request(*, want: bool = True, force: bool = False,
            emotion: Emotion = Emotion.happiness) -> ReplyRequest:
    plan = ReplyPlan(user_emotion=emotion, emotion=emotion, intent="mirror",
                     instruction="", sticker_query="celebration", sticker_emotions=(emotion,))
    return ReplyRequest(messages=[{"role": "user", "content": "I passed!"}], plan=plan,
                        want_sticker=want, force_sticker=force)


def test_the_action_is_split_from_the_text() -> None:
    assert find_action("Third time lucky! [sticker: A shiny golden trophy cup.]") == (
        "Third time lucky!  ", "A shiny golden trophy cup.")


def test_a_tuned_llm_chooses_its_sticker(library, index) -> None:
    llm = ScriptedLLM("Third attempt, and you did it! [sticker: A shiny golden trophy cup.]")
    model = RetrievalReplyModel(llm, library, index, sticker_actions=True)
    reply = model.reply([request()])[0]
    assert reply.text == "Third attempt, and you did it!"
    assert reply.sticker is not None and "trophy" in reply.sticker.description.lower()
    # The rate control said no: the text stays, the sticker goes.
    assert model.reply([request(want=False)])[0].sticker is None


def test_no_action_means_no_sticker_unless_one_is_overdue(library, index) -> None:
    model = RetrievalReplyModel(ScriptedLLM("That's huge, congrats!"), library, index,
                                sticker_actions=True)
    assert model.reply([request()])[0].sticker is None
    overdue = model.reply([request(force=True)])[0].sticker
    assert overdue is not None and overdue.emotion == Emotion.happiness


def test_an_untuned_llm_gets_the_planned_sticker(library, index) -> None:
    model = RetrievalReplyModel(ScriptedLLM("That's huge, congrats!"), library, index)
    sticker = model.reply([request()])[0].sticker
    assert sticker is not None and sticker.emotion == Emotion.happiness


def test_a_laughing_sticker_for_bad_news_gives_way_to_comfort(library, index) -> None:
    from engine.planning import plan_reply
    from engine.types import Perception

    llm = ScriptedLLM("Oh no, that's awful. [sticker: A yellow face laughing with its mouth "
                      "wide open and eyes squeezed shut into > < shapes.]")
    model = RetrievalReplyModel(llm, library, index, sticker_actions=True)
    plan = plan_reply(Perception(emotion=Emotion.sadness, valence=-0.8, confidence=1.0))
    sad = ReplyRequest(messages=[{"role": "user", "content": "my dog died"}], plan=plan,
                       want_sticker=True)
    reply = model.reply([sad])[0]
    assert reply.text == "Oh no, that's awful."
    assert reply.sticker is not None and "laughing" not in reply.sticker.description
    assert model.suits(library.get(reply.sticker.id), plan)
    assert model.chooses_stickers


def test_cheer_only_mirrors_joy(library, index) -> None:
    """A laughing face goes to someone glad; "thanks for listening" (calm) or anything
    while the person is hurting (the responder sets `upset` from the earlier turns) gets
    a gentle one instead, whether the model asked for the laugh or the plan chose."""
    from engine.planning import plan_reply
    from engine.reply_model import cheerful
    from engine.types import Perception

    def by_emoji(emoji: str):
        return next(s for s in library if s.emoji == emoji)

    llm = ScriptedLLM("Anytime. [sticker: A yellow face laughing so hard that tears stream "
                      "from its eyes.]")
    model = RetrievalReplyModel(llm, library, index, sticker_actions=True)

    def ask(emotion: Emotion, *, upset: bool = False) -> ReplyRequest:
        plan = plan_reply(Perception(emotion=emotion, valence=0.0, confidence=1.0))
        return ReplyRequest(messages=[{"role": "user", "content": "thanks for listening"}],
                            plan=plan, want_sticker=True, upset=upset)

    glad = model.reply([ask(Emotion.happiness)])[0].sticker
    assert glad is not None and cheerful(library.get(glad.id))
    for calm in (ask(Emotion.neutral), ask(Emotion.happiness, upset=True)):
        gentle = model.reply([calm])[0].sticker
        assert gentle is not None and not cheerful(library.get(gentle.id))
        calm.force_sticker, model.sticker_actions = True, False  # the plan's pick, too
        assert not cheerful(library.get(model.reply([calm])[0].sticker.id))
        model.sticker_actions = True
    assert not cheerful(by_emoji("🤗")) and not cheerful(by_emoji("🫶"))
    assert cheerful(by_emoji("😂")) and cheerful(by_emoji("😊"))  # a smile is not a hug


def test_a_memory_after_a_loss_gets_comfort_not_a_gasp(library, index) -> None:
    """'he taught me to fish', the day after the death, reads as neutral: the tuned model
    asked for a face covering its mouth in surprise and got it (🫢). The plan comforts."""
    from engine.planning import plan_reply
    from engine.reply_model import comforting
    from engine.types import Perception

    llm = ScriptedLLM("What a gift he gave you. [sticker: A yellow face with wide eyes "
                      "covering its mouth with a hand.]")
    model = RetrievalReplyModel(llm, library, index, sticker_actions=True)
    perception = Perception(emotion=Emotion.neutral, valence=0.1, confidence=1.0)

    def ask(grieving: bool) -> ReplyRequest:
        return ReplyRequest(messages=[{"role": "user", "content": "he taught me to fish"}],
                            plan=plan_reply(perception, grieving=grieving),
                            want_sticker=True, upset=grieving)

    gasp = model.reply([ask(grieving=False)])[0].sticker
    assert gasp is not None and library.get(gasp.id).emoji == "🫢"
    gentle = model.reply([ask(grieving=True)])[0].sticker
    assert gentle is not None and comforting(library.get(gentle.id)), gentle


def test_comfort_is_not_always_the_same_hug(library, index) -> None:
    """Across many sad chats the plan's comfort varies among comforting stickers (🫂 🤗
    🫶 🧸 ...) by the reply's words, and the same reply always gets the same one."""
    from engine.planning import plan_reply
    from engine.reply_model import comforting
    from engine.types import Perception

    plan = plan_reply(Perception(emotion=Emotion.sadness, valence=-0.8, confidence=1.0))
    replies = ["I'm so sorry about your dad.", "That sounds exhausting.",
               "Losing a pet hurts so much.", "A breakup like that takes time to heal.",
               "I'm here if you want to talk about it.", "Missing home is really hard.",
               "That rejection stings, I know.", "Your grandmother sounds wonderful.",
               "Being left out like that hurts.", "Two weeks in hospital is a lot."]
    model = RetrievalReplyModel(ScriptedLLM(""), library, index)
    request = ReplyRequest(messages=[], plan=plan, want_sticker=True, upset=True)
    chosen = [model.pick_sticker(request, text) for text in replies]
    assert all(c is not None and comforting(library.get(c.id)) for c in chosen)
    assert len({c.id for c in chosen}) >= 4
    assert [model.pick_sticker(request, text).id for text in replies] == [c.id for c in chosen]
