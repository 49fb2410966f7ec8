"""Slash commands on Discord: synced at start, /reset, /stickers off, /forget with its
confirmation buttons, and /channel enable for admins only."""

from __future__ import annotations

import time

from tests.bots.discord.conftest import (
    ANN,
    BOB,
    CHANNEL,
    GUILD,
    MESSAGES,
    dm,
    eventually,
    rows,
    wait_answers,
)
from tests.engine import media_samples as samples

MANAGE_CHANNELS = 1 << 4


def response_text(fake, index: int = -1) -> str:
    body = eventually(lambda: fake.interaction_responses)[index]
    payload = body.get("payload_json", body)
    return payload["data"]["content"]


def respond_count(fake, count: int) -> None:
    eventually(lambda: len(fake.interaction_responses) >= count)


def test_slash_commands_are_synced_at_start(bot, fake) -> None:
    commands = {c["name"]: c for c in fake.application_commands}
    assert set(commands) == {"reset", "forget", "stickers", "channel"}
    channel = commands["channel"]
    assert {o["name"] for o in channel["options"]} == {"enable", "disable"}
    assert int(channel["default_member_permissions"]) == MANAGE_CHANNELS
    assert channel["dm_permission"] is False


def test_reset_forgets_the_conversation_memory(bot, fake) -> None:
    channel = dm(fake)
    fake.send_message(channel, ANN, "my dog is sick")
    wait_answers(fake, channel)
    fake.interact("reset", ANN, channel_id=channel)
    assert "forgotten our conversation" in response_text(fake)
    assert rows(bot, "SELECT reset_at IS NOT NULL FROM conversations") == [(1,)]
    assert bot.runtime.memory.recent("discord", str(channel), str(ANN), 6) == []


def test_stickers_off_gives_text_only(bot, fake) -> None:
    channel = dm(fake)
    fake.interact("stickers", ANN, channel_id=channel,
                  options=[{"name": "state", "type": 3, "value": "off"}])
    assert "off" in response_text(fake)
    for n in range(3):
        fake.send_message(channel, ANN, f"I am so happy {n}!")
    answers = wait_answers(fake, channel, 3)
    assert all(not m["attachments"] for m in answers)
    fake.interact("stickers", ANN, channel_id=channel)
    respond_count(fake, 2)
    assert "Stickers are off" in response_text(fake)
    assert not bot.transcripts.stickers_enabled("discord", str(ANN))


def test_forget_asks_then_deletes_everything(bot, fake) -> None:
    channel = CHANNEL  # in a server, where someone else could press the buttons
    fake.send_message(channel, ANN, "look", guild_id=GUILD, mentions_bot=True,
                      stickers=[(5, "Crying", 1, samples.make_png())])
    wait_answers(fake, channel)
    assert list(bot.settings.media_dir.rglob("*.png"))

    def ask() -> tuple[dict, str, str]:
        count = len(fake.interaction_responses)
        fake.interact("forget", ANN, channel_id=channel, guild_id=GUILD)
        respond_count(fake, count + 1)
        question = [m for m in fake.messages_in(channel) if m.get("components")][-1]
        assert "Delete everything?" in question["content"]
        yes, no = (c["custom_id"] for row in question["components"] for c in row["components"])
        return question, yes, no

    # Cancel first: nothing happens, and the buttons go away.
    question, yes, no = ask()
    fake.press_button(no, ANN, channel_id=channel, message_id=int(question["id"]),
                      guild_id=GUILD)
    respond_count(fake, 2)
    assert "nothing was deleted" in response_text(fake)
    assert not [m for m in fake.messages_in(channel) if m.get("components")]
    assert rows(bot, "SELECT count(*) FROM messages")[0][0] == 2
    # Someone else cannot press it for them.
    question, yes, no = ask()
    fake.press_button(yes, BOB, channel_id=channel, message_id=int(question["id"]),
                      guild_id=GUILD)
    respond_count(fake, 4)
    assert "Only the person who asked" in response_text(fake)
    assert rows(bot, "SELECT count(*) FROM messages")[0][0] == 2
    fake.press_button(yes, ANN, channel_id=channel, message_id=int(question["id"]),
                      guild_id=GUILD)
    respond_count(fake, 5)
    assert "no longer remember" in response_text(fake)
    assert rows(bot, "SELECT count(*) FROM messages")[0][0] == 0
    assert rows(bot, "SELECT count(*) FROM users")[0][0] == 0
    assert rows(bot, "SELECT count(*) FROM deliveries")[0][0] == 0
    assert not list(bot.settings.media_dir.rglob("*.png"))


def test_channel_enable_is_for_admins_only(bot, fake) -> None:
    enable = [{"name": "enable", "type": 1, "options": []}]
    fake.interact("channel", BOB, channel_id=CHANNEL, guild_id=GUILD, options=enable)
    respond_count(fake, 1)
    assert "Only people who can manage channels" in response_text(fake)
    assert rows(bot, "SELECT count(*) FROM enabled_channels")[0][0] == 0
    fake.send_message(CHANNEL, BOB, "hello there", guild_id=GUILD, username="bob")
    time.sleep(0.8)
    assert fake.requests_to("POST", MESSAGES) == []
    fake.interact("channel", ANN, channel_id=CHANNEL, guild_id=GUILD, options=enable,
                  member_permissions=MANAGE_CHANNELS)
    respond_count(fake, 2)
    assert "answer every message in this channel" in response_text(fake)
    fake.send_message(CHANNEL, BOB, "hello again", guild_id=GUILD, username="bob")
    eventually(lambda: len(fake.requests_to("POST", MESSAGES)) >= 1, timeout=20)
    fake.interact("channel", ANN, channel_id=CHANNEL, guild_id=GUILD,
                  options=[{"name": "disable", "type": 1, "options": []}],
                  member_permissions=MANAGE_CHANNELS)
    respond_count(fake, 3)
    assert "only when someone mentions me" in response_text(fake)
    assert rows(bot, "SELECT count(*) FROM enabled_channels")[0][0] == 0
