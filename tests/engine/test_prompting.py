from engine.planning import plan_reply
from engine.prompting import build_messages, clean_reply, guidance
from engine.types import Emotion, HistoryTurn, Perception


def test_guidance_names_emotion_cause_and_plan():
    perception = Perception(emotion=Emotion.sadness, valence=-0.7, confidence=0.8,
                            cause_words=["died", "dog"])
    line = guidance(perception, plan_reply(perception))
    assert "sadness" in line and "died, dog" in line and "comfort" in line


def test_messages_carry_history_roles_and_stickers_in_order():
    perception = Perception(emotion=Emotion.happiness, valence=0.6, confidence=0.9,
                            media_descriptions=["a sticker of a party popper (happiness)"])
    history = [
        HistoryTurn(role="user", text="hi"),
        HistoryTurn(role="bot", text="Hello!", sticker_id="s1", sticker_description="waving"),
    ]
    messages = build_messages(history, "we won!", perception, plan_reply(perception))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "[sticker: waving]" in messages[2]["content"]
    assert messages[-1]["content"].startswith("we won!")
    assert "party popper" in messages[-1]["content"]


def test_sticker_only_turn_is_described():
    perception = Perception(emotion=Emotion.sadness, valence=-0.5, confidence=0.7,
                            media_descriptions=["a sticker of a crying face (sadness)"])
    messages = build_messages([], "", perception, plan_reply(perception))
    assert messages[-1]["content"] == "[sent a sticker of a crying face (sadness)]"


def test_clean_reply_removes_copied_prompt_format():
    assert clean_reply('StickerBot: "So happy for you! [sticker: party]" #yay') == (
        "So happy for you! yay")
    assert clean_reply("  [sent a sticker]  ") == ""


def test_long_prompts_lose_old_turns_first_then_the_new_turn_is_cut() -> None:
    from engine.prompting import fit_messages

    def words(messages):  # one "token" a word
        return sum(len(m["content"].split()) for m in messages)

    def cut(text, n):
        return " ".join(text.split()[:n])

    system = {"role": "system", "content": "be kind"}
    old = [{"role": "user", "content": "old " * 30}, {"role": "assistant", "content": "ok " * 30}]
    new = {"role": "user", "content": "new " * 40}
    fitted = fit_messages([system, *old, new], words, limit=60, cut=cut)
    assert fitted == [system, new]  # both old turns had to go; the new one fits
    huge = {"role": "user", "content": "word " * 500}
    fitted = fit_messages([system, *old, huge], words, limit=60, cut=cut)
    assert fitted[0] == system and len(fitted) == 2
    assert words(fitted) <= 60 and fitted[1]["content"].startswith("word word")
    assert fitted[1]["content"].endswith("[...]")
    short = [system, new]
    assert fit_messages(short, words, limit=60, cut=cut) == short
