"""The fake Discord server, driven by the real discord.py Client over real HTTP and a
real websocket."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord
import discord.asset
import discord.gateway
import discord.http
import pytest
import yarl
from discord import app_commands

from tests.harness.fake_discord import FakeDiscord

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
PNG2 = b"\x89PNG\r\n\x1a\n" + bytes(range(64, 0, -1))
GIF = b"GIF89a" + bytes(range(32))
USER = 42
GUILD = 5000
CHANNEL = 5001


@pytest.fixture
def dc(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDiscord]:
    with FakeDiscord() as server:
        monkeypatch.setattr(discord.http.Route, "BASE", server.api_url)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url)
        )
        monkeypatch.setattr(discord.asset.Asset, "BASE", server.cdn_url)
        server.add_guild(GUILD, channels=[CHANNEL])
        yield server


class Echo(discord.Client):
    """Answers every message with "echo: <content>"; records what it read."""

    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=0.1)
        self.tree = app_commands.CommandTree(self)
        self.ready = asyncio.Event()
        self.got: list[discord.Message] = []
        self.downloads: list[bytes] = []
        self.pressed: list[str] = []
        self.busy = 0

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until no on_message handler is running (its reply got its response)."""
        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py sleeps 5 s here before a re-IDENTIFY

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        assert self.user is not None
        if message.author.id == self.user.id:
            return
        self.busy += 1
        try:
            await self._answer(message)
        finally:
            self.busy -= 1

    async def _answer(self, message: discord.Message) -> None:
        self.got.append(message)
        for att in message.attachments:
            self.downloads.append(await att.read())
        for item in message.stickers:
            if item.format is discord.StickerFormatType.gif:
                # discord.py hard-codes https://media.discordapp.net for GIF stickers
                url = f"{discord.asset.Asset.BASE}/stickers/{item.id}.gif"
                self.downloads.append(await self.http.get_from_cdn(url))
            else:
                self.downloads.append(await item.read())
        await message.channel.send(f"echo: {message.content}")


@asynccontextmanager
async def running(dc: FakeDiscord, client: Echo | None = None) -> AsyncIterator[Echo]:
    client = client or Echo()
    task = asyncio.create_task(client.start(dc.token))
    try:
        await asyncio.wait_for(client.ready.wait(), 10)
        yield client
    finally:
        await client.settle()
        await client.close()
        await asyncio.wait_for(task, 10)


def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return asyncio.to_thread(fn, *args, **kwargs)


def test_ready_and_dm_echo(dc: FakeDiscord) -> None:
    dm = dc.add_dm(USER)

    async def scenario() -> None:
        async with running(dc) as client:
            assert client.user is not None and client.user.id == dc.bot_user_id
            assert client.application_id == dc.application_id
            assert client.get_guild(GUILD) is not None
            assert client.get_channel(CHANNEL) is not None
            dc.send_message(dm, USER, "hello there")
            await in_thread(dc.wait_for_message, dm)
            assert isinstance(client.got[0].channel, discord.DMChannel)
            assert client.got[0].author.id == USER
            assert client.got[0].content == "hello there"
            echo_id = int(dc.messages_in(dm)[0]["id"])
            dc.send_message(dm, USER, "thanks", reply_to_bot_message_id=echo_id)
            await in_thread(dc.wait_for_message, dm, 2)
            reply = client.got[1]
            assert reply.reference is not None and reply.reference.message_id == echo_id
            assert isinstance(reply.reference.resolved, discord.Message)
            assert reply.reference.resolved.author.id == dc.bot_user_id
            other = await client.fetch_user(USER + 1)
            await other.send("hello first")  # POST /users/@me/channels, then the message

    asyncio.run(scenario())
    assert [m["content"] for m in dc.messages_in(dm)] == ["echo: hello there", "echo: thanks"]
    assert [m["content"] for m in dc.messages_in(dc.add_dm(USER + 1))] == ["hello first"]
    assert dc.requests_to("POST", "/users/@me/channels") == [{"recipient_id": USER + 1}]
    assert dc.identify_count == 1
    assert dc.requests_to("GET", "/users/@me")
    assert dc.gateway_events[0][0] in ("HEARTBEAT", "IDENTIFY")
    assert dc.gateway_connections[0]["compress"] == "zlib-stream"  # what discord.py asks
    identify = next(d for n, d in dc.gateway_events if n == "IDENTIFY")
    assert identify["token"] == dc.token
    assert identify["intents"] & (1 << 15)  # message_content


def test_guild_mention_attachment_and_sticker_bytes(dc: FakeDiscord) -> None:
    async def scenario() -> list[bytes]:
        async with running(dc) as client:
            dc.send_message(
                CHANNEL,
                USER,
                "look",
                mentions_bot=True,
                attachments=[("cat.png", PNG, "image/png")],
                stickers=[(76, "smile", 1, PNG2), (77, "wave", 4, GIF)],
            )
            await in_thread(dc.wait_for_message, CHANNEL)
            msg = client.got[0]
            assert msg.guild is not None and msg.guild.id == GUILD
            assert client.user in msg.mentions
            assert msg.content == f"<@{dc.bot_user_id}> look"
            assert msg.stickers[0].format is discord.StickerFormatType.png
            assert msg.stickers[0].url == f"{dc.cdn_url}/stickers/76.png"
            assert msg.stickers[1].format is discord.StickerFormatType.gif
            assert msg.attachments[0].filename == "cat.png"
            return list(client.downloads)

    assert asyncio.run(scenario()) == [PNG, PNG2, GIF]


def test_file_upload_reply_and_limits(dc: FakeDiscord) -> None:
    async def scenario() -> None:
        async with running(dc) as client:
            channel = client.get_channel(CHANNEL)
            assert isinstance(channel, discord.TextChannel)
            first = await channel.send("first")
            await channel.send(
                "a sticker", file=discord.File(io.BytesIO(PNG), "s.png"), reference=first
            )
            await channel.typing()
            with pytest.raises(discord.HTTPException) as err:
                await channel.send("x" * 2001)
            assert err.value.status == 400 and err.value.code == 50035
            edited = await first.edit(content="first, edited")
            assert edited.content == "first, edited"
            fetched = await channel.fetch_message(first.id)
            assert fetched.content == "first, edited" and fetched.author.id == dc.bot_user_id

    asyncio.run(scenario())
    first, upload = dc.messages_in(CHANNEL)
    assert first["content"] == "first, edited"
    assert upload["attachments"][0]["filename"] == "s.png"
    assert upload["attachments"][0]["data"] == PNG
    assert upload["message_reference"]["message_id"] == first["id"]
    assert dc.requests_to("POST", rf"/channels/{CHANNEL}/typing")
    body = dc.requests_to("POST", rf"/channels/{CHANNEL}/messages")[1]
    assert body["files"][0]["data"] == PNG and body["payload_json"]["content"] == "a sticker"


@pytest.mark.parametrize("global_", [False, True])
def test_rate_limit_is_waited_out(dc: FakeDiscord, global_: bool) -> None:
    dc.fail_next("POST", r"/channels/\d+/messages", 429, retry_after=0.4, global_=global_)

    async def scenario() -> float:
        async with running(dc):
            t0 = time.monotonic()
            dc.send_message(CHANNEL, USER, "hi")
            await in_thread(dc.wait_for_message, CHANNEL)
            return time.monotonic() - t0

    elapsed = asyncio.run(scenario())
    assert elapsed >= 0.4
    assert len(dc.requests_to("POST", rf"/channels/{CHANNEL}/messages")) == 2
    assert [m["content"] for m in dc.messages_in(CHANNEL)] == ["echo: hi"]


def test_wrong_token_is_401(dc: FakeDiscord) -> None:
    async def scenario() -> None:
        client = Echo()
        with pytest.raises(discord.LoginFailure):
            await client.login("WRONG.TOKEN")
        await client.close()

    asyncio.run(scenario())


def test_resume_replays_missed_events_once(dc: FakeDiscord) -> None:
    async def scenario() -> Echo:
        async with running(dc) as client:
            dc.send_message(CHANNEL, USER, "before")
            await in_thread(dc.wait_for_message, CHANNEL)
            await client.settle()
            dc.drop_connection(resumable=True)
            dc.send_message(CHANNEL, USER, "while away")
            await in_thread(dc.wait_for_gateway, "RESUME")
            await in_thread(dc.wait_for_message, CHANNEL, 2)
            await asyncio.sleep(0.3)  # a duplicate would arrive now
            return client

    client = asyncio.run(scenario())
    assert [m.content for m in client.got] == ["before", "while away"]
    assert [m["content"] for m in dc.messages_in(CHANNEL)] == ["echo: before", "echo: while away"]
    assert (dc.identify_count, dc.resume_count) == (1, 1)
    resume = next(d for n, d in dc.gateway_events if n == "RESUME")
    # READY, GUILD_CREATE, "before", the bot's echo of it: the client saw s=4
    assert resume["seq"] == 4 and resume["token"] == dc.token


def test_invalid_session_makes_client_identify_again(dc: FakeDiscord) -> None:
    async def scenario() -> None:
        async with running(dc):
            dc.drop_connection(resumable=False)
            await in_thread(dc.wait_for_gateway, "IDENTIFY", 2)
            dc.send_message(CHANNEL, USER, "after")
            await in_thread(dc.wait_for_message, CHANNEL)

    asyncio.run(scenario())
    assert dc.resume_count == 1 and dc.identify_count == 2
    assert [m["content"] for m in dc.messages_in(CHANNEL)] == ["echo: after"]


async def until(predicate: Any, timeout: float = 10.0) -> None:
    """Wait on the client's loop until predicate() holds (the client finished its work)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting on the client"
        await asyncio.sleep(0.01)


class Buttons(discord.ui.View):
    def __init__(self, client: Echo) -> None:
        super().__init__(timeout=None)
        self.client = client

    @discord.ui.button(label="Again", custom_id="again")
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.edit_message(content="pressed", view=None)
        self.client.pressed.append(button.custom_id or "")


def test_slash_command_sync_answer_and_button(dc: FakeDiscord) -> None:
    client = Echo()
    done: list[str] = []

    @client.tree.command(name="hello", description="Say hello")
    async def hello(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(f"hi {name}", view=Buttons(client))
        await interaction.followup.send("and a follow-up")
        done.append("hello")

    @client.tree.command(name="slow", description="Think first")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.edit_original_response(content="thought it over")
        done.append("slow")

    async def scenario() -> None:
        async with running(dc, client):
            synced = await client.tree.sync()
            assert sorted(c.name for c in synced) == ["hello", "slow"]
            inter = dc.interact(
                "hello",
                USER,
                channel_id=CHANNEL,
                guild_id=GUILD,
                options=[{"name": "name", "type": 3, "value": "Ann"}],
            )
            await until(lambda: done == ["hello"])
            answer = dc.messages_in(CHANNEL)[0]
            assert answer["content"] == "hi Ann"
            assert answer["components"][0]["components"][0]["custom_id"] == "again"
            assert dc.interaction_responses[0]["token"] == inter["token"]
            dc.press_button("again", USER, channel_id=CHANNEL, message_id=int(answer["id"]))
            await until(lambda: client.pressed == ["again"])
            dc.interact("slow", USER, channel_id=CHANNEL, guild_id=GUILD)
            await until(lambda: done == ["hello", "slow"])

    asyncio.run(scenario())
    assert sorted(c["name"] for c in dc.application_commands) == ["hello", "slow"]
    hello_cmd = next(c for c in dc.application_commands if c["name"] == "hello")
    assert hello_cmd["options"][0]["name"] == "name"
    first, followup, press, deferred, edit = dc.interaction_responses
    assert first["type"] == 4 and first["data"]["content"] == "hi Ann"
    assert followup["followup"] and followup["content"] == "and a follow-up"
    assert press["type"] == 7
    assert deferred["type"] == 5 and deferred["data"]["flags"] == 64
    assert edit["edit"] == "@original" and edit["content"] == "thought it over"
    pressed, follow, thought = dc.messages_in(CHANNEL)
    assert pressed["content"] == "pressed" and pressed["components"] == []
    assert follow["content"] == "and a follow-up"
    assert thought["content"] == "thought it over" and thought["flags"] == 64


def test_gateway_protocol_with_a_raw_websocket(dc: FakeDiscord) -> None:
    """Plain JSON text frames when no compression is asked; HELLO, ACK, READY, 4004."""

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(dc.gateway_url + "?v=10&encoding=json") as ws:
                hello = await ws.receive_json(timeout=5)
                assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
                await ws.send_json({"op": 1, "d": None})
                assert (await ws.receive_json(timeout=5))["op"] == 11
                await ws.send_json({"op": 2, "d": {"token": dc.token, "intents": 0}})
                ready = await ws.receive_json(timeout=5)
                assert (ready["t"], ready["s"]) == ("READY", 1)
                assert ready["d"]["resume_gateway_url"] == dc.gateway_url
                guild = await ws.receive_json(timeout=5)
                assert (guild["t"], guild["s"], guild["d"]["id"]) == ("GUILD_CREATE", 2, str(GUILD))
            async with session.ws_connect(dc.gateway_url) as ws:
                await ws.receive_json(timeout=5)
                await ws.send_json({"op": 2, "d": {"token": "WRONG", "intents": 0}})
                closed = await ws.receive(timeout=5)
                assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == 4004

    asyncio.run(scenario())
