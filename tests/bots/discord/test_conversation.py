"""Talking to the bot on Discord: DMs, servers (mention, reply, enabled channels), memory
per person per channel, typing, text split at 2000 with the sticker on the last chunk."""

from __future__ import annotations

import time

from bots.discord import delivery
from bots.discord.delivery import payload_for_text
from tests.bots.discord.conftest import (
    ANN,
    BOB,
    CHANNEL,
    GUILD,
    MESSAGES,
    OTHER_CHANNEL,
    dm,
    eventually,
    rows,
    texts,
    wait_answers,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_dm_gets_text_and_the_sticker_as_png_in_the_same_message(bot, fake) -> None:
    channel = dm(fake)
    fake.send_message(channel, ANN, "I got the job!")
    answer = wait_answers(fake, channel)[0]
    assert answer["content"]
    (attachment,) = answer["attachments"]
    assert attachment["filename"].endswith(".png")
    assert attachment["data"].startswith(PNG_MAGIC)
    # The typing indicator went up before the answer.
    order = [p for m, p, _ in fake.requests if m == "POST" and p.startswith(f"/channels/{channel}")]
    assert order[0] == f"/channels/{channel}/typing"
    assert order[-1] == f"/channels/{channel}/messages"
    stored = rows(bot, "SELECT m.role, m.text, c.platform, c.chat_id, u.platform_user_id "
                       "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                       "JOIN users u ON u.id = c.user_id ORDER BY m.id")
    assert stored[0] == ("user", "I got the job!", "discord", str(channel), str(ANN))
    assert stored[1][:2] == ("bot", answer["content"])
    eventually(lambda: rows(bot, "SELECT state FROM deliveries") == [("sent",)])


def test_server_messages_are_answered_only_when_addressed(bot, fake) -> None:
    fake.send_message(CHANNEL, ANN, "just chatting with friends", guild_id=GUILD)
    fake.send_message(CHANNEL, ANN, "I failed my exam", guild_id=GUILD, mentions_bot=True)
    first = wait_answers(fake, CHANNEL)
    assert len(first) == 1
    # In a server the answer replies to the person's message, so it is clear whom it is for.
    assert first[0]["message_reference"]["message_id"]
    fake.send_message(CHANNEL, BOB, "and a reply to the bot", guild_id=GUILD, username="bob",
                      reply_to_bot_message_id=int(first[0]["id"]))
    wait_answers(fake, CHANNEL, 2)
    time.sleep(0.5)
    assert len(fake.messages_in(CHANNEL)) == 2
    user_texts = [r[0] for r in rows(bot, "SELECT text FROM messages WHERE role='user'")]
    assert "just chatting with friends" not in user_texts
    assert "I failed my exam" in user_texts  # the mention is stripped before answering
    # Memory is per person per channel.
    conversations = rows(bot, "SELECT c.chat_id, u.platform_user_id FROM conversations c "
                              "JOIN users u ON u.id = c.user_id ORDER BY c.id")
    assert conversations == [(str(CHANNEL), str(ANN)), (str(CHANNEL), str(BOB))]


def test_enabled_channel_gets_every_message_and_survives_a_restart(bot_factory, fake) -> None:
    first = bot_factory()
    fake.interact("channel", ANN, channel_id=OTHER_CHANNEL, guild_id=GUILD,
                  options=[{"name": "enable", "type": 1, "options": []}],
                  member_permissions=1 << 4)
    eventually(lambda: fake.interaction_responses)
    fake.send_message(OTHER_CHANNEL, BOB, "nobody mentioned the bot here", guild_id=GUILD)
    eventually(lambda: len(texts(fake, OTHER_CHANNEL)) >= 2, timeout=20)
    assert rows(first, "SELECT channel_id, guild_id FROM enabled_channels") == [
        (str(OTHER_CHANNEL), str(GUILD))]
    first.close()
    bot_factory()
    fake.send_message(OTHER_CHANNEL, BOB, "still listening?", guild_id=GUILD)
    eventually(lambda: len(texts(fake, OTHER_CHANNEL)) >= 3, timeout=20)
    # Other channels still need a mention.
    fake.send_message(CHANNEL, BOB, "not for the bot", guild_id=GUILD)
    time.sleep(0.8)
    assert fake.messages_in(CHANNEL) == []


def test_long_reply_is_split_with_the_sticker_on_the_last_chunk(bot, fake, monkeypatch) -> None:
    monkeypatch.setattr(delivery, "MAX_MESSAGE", 30)  # the tiny LLM writes short replies
    channel = dm(fake)
    fake.send_message(channel, ANN, "tell me something nice please, I am so happy today")
    eventually(lambda: any(m["attachments"] for m in fake.messages_in(channel)), timeout=20)
    messages = fake.messages_in(channel)
    stored = rows(bot, "SELECT text FROM messages WHERE role='bot'")[0][0]
    assert len(messages) >= 2
    assert all(len(m["content"]) <= 30 for m in messages)
    assert " ".join(m["content"] for m in messages).split() == stored.split()
    assert [bool(m["attachments"]) for m in messages] == [False] * (len(messages) - 1) + [True]


def test_text_is_split_at_2000_characters() -> None:
    text = ("I hear you. " * 400).strip()  # 4800 characters
    chunks = payload_for_text(text, "1")["texts"]
    assert len(chunks) == 3 and all(len(c) <= 2000 for c in chunks)
    assert " ".join(chunks) == text


def test_typing_is_refreshed_while_a_reply_is_made(bot, fake) -> None:
    import asyncio

    from bots.typing_indicator import keep_typing

    channel = dm(fake)

    async def slow_reply() -> None:
        target = bot.client.get_partial_messageable(channel)
        async with keep_typing(target.typing, 0.1):
            await asyncio.sleep(0.45)

    bot.call(slow_reply())
    typing = rf"/channels/{channel}/typing"
    count = len(fake.requests_to("POST", typing))
    assert count >= 3  # refreshed, not sent once
    time.sleep(0.3)
    assert len(fake.requests_to("POST", typing)) == count  # stopped with the reply
    assert fake.requests_to("POST", MESSAGES) == []
