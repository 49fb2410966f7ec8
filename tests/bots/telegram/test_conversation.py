"""Talking to the bot on Telegram: private chats, groups, memory per person, typing, the
sticker after the words, and the sticker upload happening once."""

from __future__ import annotations

import sqlite3
import time

from tests.bots.telegram.conftest import eventually, stickers, texts, wait_answer

ANN, BOB, GROUP = 1001, 1002, -5001


def rows(bot, sql: str) -> list[tuple]:
    with sqlite3.connect(bot.settings.data_dir / "stickerbot.db") as db:
        return db.execute(sql).fetchall()


def message(fake, message_id: int) -> dict:
    return next(m for m in fake.sent_messages(ANN) if m["message_id"] == message_id)


def test_private_text_gets_plain_text_then_a_sticker(bot, fake) -> None:
    fake.send_text(ANN, ANN, "I got the job!")
    sent = wait_answer(fake, ANN)
    assert sent[0]["text"] and "parse_mode" not in sent[0]
    fake.wait_for("sendSticker", where=lambda p: p.get("chat_id") == ANN)
    assert fake.calls_to("sendChatAction")[0]["action"] == "typing"
    order = [m for m, p in fake.calls if m in ("sendMessage", "sendSticker")]
    assert order == ["sendMessage", "sendSticker"]  # words first, then the sticker
    sticker = stickers(fake, ANN)[0]
    assert sticker["width"] == 512 and sticker["height"] == 512
    stored = rows(bot, "SELECT role, text, user_emotion FROM messages ORDER BY id")
    assert stored[0] == ("user", "I got the job!", "happiness")
    assert stored[1][0] == "bot" and stored[1][1] == texts(fake, ANN)[0]


def test_commands_are_listed_at_start(bot, fake) -> None:
    assert [c["command"] for c in fake.commands] == ["start", "help", "reset", "forget",
                                                     "stickers"]


def test_same_sticker_is_uploaded_once_even_across_a_restart(bot_factory, fake, library) -> None:
    first = bot_factory()
    fake.send_text(ANN, ANN, "I am so happy today!")
    fake.wait_for("sendSticker")
    upload = fake.calls_to("sendSticker")[0]["sticker"]
    assert not isinstance(upload, str)  # the first time the WEBP file itself goes up
    sticker_id = rows(first, "SELECT sticker_id FROM messages WHERE role='bot'")[0][0]
    file_id = eventually(lambda: rows(first, "SELECT file_id FROM platform_stickers"))
    assert rows(first, "SELECT sticker_id FROM platform_stickers") == [(sticker_id,)]
    first.close()
    second = bot_factory()
    # Other people in the same mood: the bot picks that sticker again, by file_id now.
    for n in range(6):
        fake.send_text(2000 + n, 2000 + n, "I am so happy today!")
        fake.wait_for("sendSticker", 2 + n, timeout=30)
    uploads = [p for p in fake.calls_to("sendSticker") if not isinstance(p["sticker"], str)]
    cached = eventually(lambda: {r[0] for r in rows(
        second, "SELECT sticker_id FROM platform_stickers")} if len(uploads) == len(
        rows(second, "SELECT sticker_id FROM platform_stickers")) else None)
    assert len(uploads) == len(cached)  # every sticker went up exactly once
    assert file_id[0][0] in [p["sticker"] for p in fake.calls_to("sendSticker")[1:]]


def test_long_reply_is_split_under_the_limit(bot, fake, monkeypatch) -> None:
    from bots.telegram import delivery

    monkeypatch.setattr(delivery, "MAX_MESSAGE", 40)  # the tiny LLM writes short replies
    fake.send_text(ANN, ANN, "tell me something nice please")
    fake.wait_for("sendSticker")
    parts = texts(fake, ANN)
    stored = rows(bot, "SELECT text FROM messages WHERE role='bot'")[0][0]
    assert all(len(p) <= 40 for p in parts)
    assert " ".join(parts).split() == stored.split()


def test_group_only_answers_when_addressed(bot, fake) -> None:
    fake.send_text(GROUP, ANN, "just chatting with friends", chat_type="group")
    fake.mention(GROUP, ANN, "I failed my exam")
    first = wait_answer(fake, GROUP)
    assert len(first) == 1
    # The answer replies to the person's message, so the group sees whom it is for.
    assert first[0]["reply_parameters"]["message_id"] == 2
    fake.send_text(GROUP, BOB, "and a reply to the bot", chat_type="group", reply_to_bot=True)
    wait_answer(fake, GROUP, 2)
    fake.send_command(GROUP, BOB, "help", chat_type="group")
    wait_answer(fake, GROUP, 3)
    user_texts = [r[0] for r in rows(bot, "SELECT text FROM messages WHERE role='user'")]
    assert "just chatting with friends" not in user_texts
    assert "I failed my exam" in user_texts  # the mention is stripped before answering
    # Memory is per person inside the group.
    conversations = rows(bot, "SELECT c.chat_id, u.platform_user_id FROM conversations c "
                              "JOIN users u ON u.id = c.user_id ORDER BY c.id")
    assert conversations == [(str(GROUP), str(ANN)), (str(GROUP), str(BOB))]


def test_start_help_and_unknown_command(bot, fake) -> None:
    fake.send_command(ANN, ANN, "start")
    greeting = wait_answer(fake, ANN)[0]["text"]
    assert "StickerBot" in greeting and "/forget" in greeting
    assert "messages" in greeting and "emotions" in greeting and "stickers" in greeting
    fake.send_command(ANN, ANN, "help")
    fake.send_command(ANN, ANN, "dance")
    wait_answer(fake, ANN, 3)
    assert "don't know that command" in texts(fake, ANN)[2]


def test_reset_forgets_the_conversation_memory(bot, fake) -> None:
    fake.send_text(ANN, ANN, "my dog is sick")
    wait_answer(fake, ANN)
    fake.send_command(ANN, ANN, "reset")
    wait_answer(fake, ANN, 2)
    assert "forgotten our conversation" in texts(fake, ANN)[-1]
    assert rows(bot, "SELECT reset_at IS NOT NULL FROM conversations") == [(1,)]
    assert bot.runtime.memory.recent("telegram", str(ANN), str(ANN), 6) == []


def test_stickers_off_gives_text_only(bot, fake) -> None:
    fake.send_command(ANN, ANN, "stickers", "off")
    assert "off" in wait_answer(fake, ANN)[0]["text"]
    for n in range(3):
        fake.send_text(ANN, ANN, f"I am so happy {n}!")
    wait_answer(fake, ANN, 4)
    assert fake.calls_to("sendSticker") == []
    fake.send_command(ANN, ANN, "stickers")
    # Waited for by its words: under load a reply to the texts above may still be on its
    # way and arrive after the command's answer.
    fake.wait_for("sendMessage", 1, timeout=20.0, where=lambda p: p.get("chat_id") == ANN
                  and "Stickers are off" in p.get("text", ""))
    fake.send_command(ANN, ANN, "stickers", "on")
    wait_answer(fake, ANN, 6)
    eventually(lambda: bot.transcripts.stickers_enabled("telegram", str(ANN)))


def test_forget_asks_then_deletes_everything(bot, fake) -> None:
    from tests.engine import media_samples as samples

    fake.send_sticker(ANN, ANN, samples.make_webp(), emoji="😢")
    wait_answer(fake, ANN)
    media = [p for (p,) in rows(bot, "SELECT media FROM messages WHERE media IS NOT NULL")]
    assert media
    fake.send_command(ANN, ANN, "forget")
    ask = wait_answer(fake, ANN, 2)[-1]
    buttons = ask["reply_markup"]["inline_keyboard"][0]
    question = [m for m in fake.sent_messages(ANN) if "reply_markup" in m][-1]
    # Cancel first: nothing happens.
    fake.press_button(ANN, ANN, question["message_id"], buttons[1]["callback_data"])
    fake.wait_for("editMessageText")
    assert "nothing was deleted" in message(fake, question["message_id"])["text"]
    assert rows(bot, "SELECT count(*) FROM messages")[0][0] == 2
    # Someone else cannot press it for them.
    fake.send_command(ANN, ANN, "forget")
    wait_answer(fake, ANN, 3)
    question = [m for m in fake.sent_messages(ANN) if "reply_markup" in m][-1]
    yes = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    fake.press_button(ANN, BOB, question["message_id"], yes)
    fake.wait_for("answerCallbackQuery", 2)
    assert rows(bot, "SELECT count(*) FROM messages")[0][0] == 2
    fake.press_button(ANN, ANN, question["message_id"], yes)
    fake.wait_for("editMessageText", 2)
    assert "no longer remember" in message(fake, question["message_id"])["text"]
    assert rows(bot, "SELECT count(*) FROM messages")[0][0] == 0
    assert rows(bot, "SELECT count(*) FROM users")[0][0] == 0
    assert rows(bot, "SELECT count(*) FROM deliveries")[0][0] == 0
    assert not list(bot.settings.media_dir.rglob("*.webp"))


def test_typing_is_refreshed_while_a_reply_is_made(bot, fake) -> None:
    import asyncio

    from bots.telegram.delivery import typing

    fake.add_chat(ANN)

    async def slow_reply() -> None:
        async with typing(bot.app.bot, ANN, every_s=0.1):
            await asyncio.sleep(0.45)

    bot.call(slow_reply())
    count = len(fake.calls_to("sendChatAction"))
    assert count >= 3  # refreshed, not sent once
    time.sleep(0.3)
    assert len(fake.calls_to("sendChatAction")) == count  # stopped with the reply
