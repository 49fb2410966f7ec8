"""A fake Discord (REST API v10, gateway websocket, CDN) on 127.0.0.1 for tests.

Real HTTP and a real websocket, on its own event loop in a background thread, so the
real discord.py Client runs against it unchanged once three class attributes point here::

    with FakeDiscord() as dc:
        dc.add_dm(42)
        discord.http.Route.BASE = dc.api_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(dc.gateway_url)
        discord.asset.Asset.BASE = dc.cdn_url
        ... client.start(dc.token) ...
        dc.send_message(channel_id, 42, "hi")
        dc.wait_for("POST", r"/channels/\\d+/messages")

The people's side (send_message, interact, press_button) dispatches gateway events to
every session (a session that dropped gets them on RESUME); `requests` records every
REST call (failed ones too); `fail_next` injects errors; `drop_connection` breaks the
websocket. `wait_for` blocks its thread: from a coroutine on the loop that runs
discord.py, call it via asyncio.to_thread.

Layout: fake_discord_server (thread, loop, HTTP, failures, recording),
fake_discord_gateway (websocket sessions), fake_discord_rest (REST routes and world
state), fake_discord_payloads (JSON shapes).
"""

from __future__ import annotations

import copy
from types import TracebackType
from typing import Any

from tests.harness import fake_discord_payloads as pl
from tests.harness.fake_discord_interactions import InteractionRoutes

__all__ = ["FakeDiscord"]

_STICKER_EXT = {
    1: ("png", "image/png"),
    2: ("png", "image/png"),
    3: ("json", "application/json"),
    4: ("gif", "image/gif"),
}


class FakeDiscord(InteractionRoutes):
    """The fake server; see the module docstring."""

    def __init__(
        self, token: str = "FAKE.DISCORD.TOKEN", bot_user_id: int = 900, application_id: int = 901
    ) -> None:
        super().__init__(token, bot_user_id, application_id)

    # ----- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeDiscord:
        """Start serving on a free port of 127.0.0.1; the URLs are set afterwards."""
        self._start_server()
        return self

    def stop(self) -> None:
        """Close every websocket (code 1001) and stop serving. Safe to call twice."""
        self._stop_server()

    def __enter__(self) -> FakeDiscord:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- world -----------------------------------------------------------------------
    def add_guild(
        self, guild_id: int, name: str = "Test Server", channels: list[int] | None = None
    ) -> dict[str, Any]:
        """A guild with text channels (default: one, id guild_id + 1) and the bot in it.

        Add guilds before the client connects; a guild added later is sent as
        GUILD_CREATE to the connected sessions."""
        channel_ids = list(channels) if channels is not None else [guild_id + 1]
        payload = pl.guild(guild_id, name, channel_ids, self.bot_user())
        with self._lock:
            self._guilds[guild_id] = payload
            for ch in payload["channels"]:
                self._channels[int(ch["id"])] = ch
        if self._loop is not None:
            self.dispatch("GUILD_CREATE", copy.deepcopy(payload))
        return copy.deepcopy(payload)

    def add_dm(self, user_id: int) -> int:
        """The DM channel between the bot and `user_id` (made once); returns its id."""
        return self._make_dm(user_id)

    # ----- inspection ------------------------------------------------------------------
    def messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        """Messages the bot created in a channel (after edits), in order; each attachment
        also carries its uploaded bytes under "data"."""
        with self._lock:
            out = []
            for msg in self._bot_messages.get(channel_id, []):
                m = copy.deepcopy(msg)
                datas = self._files.get((channel_id, int(msg["id"])), [])
                for att, data in zip(m["attachments"], datas, strict=False):
                    att["data"] = data
                out.append(m)
            return out

    def wait_for_message(
        self, channel_id: int, count: int = 1, *, timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        """Block until the bot has `count` messages in the channel; return messages_in."""
        self._wait_until(
            lambda: len(self._bot_messages.get(channel_id, [])) >= count,
            timeout,
            f"{count} bot message(s) in channel {channel_id}",
        )
        return self.messages_in(channel_id)

    # ----- people's side ---------------------------------------------------------------
    def _guild_of(self, channel_id: int, guild_id: int | None) -> int | None:
        with self._lock:
            channel = self._channels.get(channel_id)
        if channel is None:
            raise ValueError(f"unknown channel {channel_id}: add_guild or add_dm first")
        if "guild_id" in channel:
            if guild_id is not None and str(guild_id) != channel["guild_id"]:
                raise ValueError(f"channel {channel_id} is not in guild {guild_id}")
            return int(channel["guild_id"])
        if guild_id is not None:
            raise ValueError(f"channel {channel_id} is a DM, not in guild {guild_id}")
        return None

    def _person(self, channel_id: int, user_id: int, username: str) -> dict[str, Any]:
        with self._lock:
            channel = self._channels[channel_id]
            if channel["type"] == 1:
                recipient = channel["recipients"][0]
                if recipient["id"] != str(user_id):
                    raise ValueError(f"user {user_id} is not in DM channel {channel_id}")
                return copy.deepcopy(recipient)
        return pl.user(user_id, username)

    def send_message(
        self,
        channel_id: int,
        user_id: int,
        content: str,
        *,
        guild_id: int | None = None,
        username: str = "ann",
        mentions_bot: bool = False,
        reply_to_bot_message_id: int | None = None,
        attachments: list[tuple[str, bytes, str]] | None = None,
        stickers: list[tuple[int, str, int, bytes]] | None = None,
    ) -> dict[str, Any]:
        """A person writes in a channel; dispatches MESSAGE_CREATE and returns the message.

        attachments: (filename, data, content_type), served on this server's CDN.
        stickers: (sticker_id, name, format_type 1 PNG|2 APNG|3 LOTTIE|4 GIF, data),
        served at {cdn_url}/stickers/{id}.{png|json|gif}."""
        guild_id = self._guild_of(channel_id, guild_id)
        author = self._person(channel_id, user_id, username)
        mentions = []
        if mentions_bot:
            content = f"<@{self.bot_user_id}> {content}"
            mentions.append(self.bot_user())
        referenced = None
        if reply_to_bot_message_id is not None:
            referenced = self._find_message(channel_id, reply_to_bot_message_id)
            if referenced["author"]["id"] != str(self.bot_user_id):
                raise ValueError(f"message {reply_to_bot_message_id} is not the bot's")
            if self.bot_user() not in mentions:
                mentions.append(self.bot_user())
        atts = []
        for filename, data, content_type in attachments or []:
            aid = pl.snowflake()
            url = self._store_cdn(f"attachments/{channel_id}/{aid}/{filename}", data, content_type)
            atts.append(pl.attachment(aid, filename, data, content_type, url))
        items = []
        for sticker_id, name, format_type, data in stickers or []:
            ext, ctype = _STICKER_EXT[format_type]
            self._store_cdn(f"stickers/{sticker_id}.{ext}", data, ctype)
            items.append({"id": str(sticker_id), "name": name, "format_type": format_type})
        msg = pl.message(
            pl.snowflake(),
            channel_id,
            author,
            content,
            guild_id=guild_id,
            mentions=mentions,
            attachments=atts,
            sticker_items=items,
            referenced=referenced,
        )
        if guild_id is not None:
            msg["member"] = pl.member(None)
        self._store_message(msg)
        self.dispatch("MESSAGE_CREATE", copy.deepcopy(msg))
        return msg

    def _interaction(
        self,
        interaction_type: int,
        data: dict[str, Any],
        user_id: int,
        channel_id: int,
        guild_id: int | None,
        member_permissions: int,
        message_payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        guild_id = self._guild_of(channel_id, guild_id)
        with self._lock:
            channel = copy.deepcopy(self._channels[channel_id])
        person = self._person(channel_id, user_id, "ann")
        inter = pl.interaction(
            interaction_type,
            data,
            person,
            self.application_id,
            channel,
            guild_id=guild_id,
            member_permissions=member_permissions,
            message_payload=message_payload,
        )
        with self._lock:
            self._interactions[inter["token"]] = inter
        self.dispatch("INTERACTION_CREATE", copy.deepcopy(inter))
        return copy.deepcopy(inter)

    def interact(
        self,
        command: str,
        user_id: int,
        *,
        channel_id: int,
        guild_id: int | None = None,
        options: list[dict[str, Any]] | None = None,
        member_permissions: int = 0,
    ) -> dict[str, Any]:
        """A person runs slash command `command`; dispatches INTERACTION_CREATE (type 2)."""
        with self._lock:
            known = [
                c
                for key, cmds in self._commands.items()
                if key in ("global", str(guild_id))
                for c in cmds
                if c["name"] == command
            ]
        command_id = known[0]["id"] if known else str(pl.snowflake())
        data: dict[str, Any] = {"id": command_id, "name": command, "type": 1}
        if options:
            data["options"] = options
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        return self._interaction(2, data, user_id, channel_id, guild_id, member_permissions)

    def press_button(
        self,
        custom_id: str,
        user_id: int,
        *,
        channel_id: int,
        message_id: int,
        guild_id: int | None = None,
    ) -> dict[str, Any]:
        """A person presses the button `custom_id` on the bot's message (type 3)."""
        message = copy.deepcopy(self._find_message(channel_id, message_id))
        buttons = [c for row in message.get("components", []) for c in row.get("components", [])]
        if not any(b.get("custom_id") == custom_id for b in buttons):
            raise ValueError(f"message {message_id} has no button {custom_id!r}: {buttons}")
        data = {"custom_id": custom_id, "component_type": 2}
        return self._interaction(3, data, user_id, channel_id, guild_id, 0, message)
