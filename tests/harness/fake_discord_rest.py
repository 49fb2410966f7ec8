"""REST routes of the fake Discord server (API v10): identity, gateway discovery,
channels and messages (JSON and multipart with files), typing, DMs, application
commands, interaction callbacks and webhook follow-ups."""

from __future__ import annotations

import copy
import re
from typing import Any

from aiohttp import web

from tests.harness import fake_discord_payloads as pl
from tests.harness.fake_discord_gateway import GatewayMixin
from tests.harness.fake_discord_server import DiscordError, json_response

_ID = r"(\d+)"
LOADING = 128  # message flag of a deferred interaction response ("is thinking...")


def _too_long() -> DiscordError:
    return DiscordError(
        400,
        "Invalid Form Body",
        50035,
        {
            "content": {
                "_errors": [
                    {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
                ]
            }
        },
    )


class RestRoutes(GatewayMixin):
    """World state (guilds, channels, messages, commands) and the routes over it."""

    def __init__(self, token: str, bot_user_id: int, application_id: int) -> None:
        super().__init__(token, bot_user_id, application_id)
        self._guilds: dict[int, dict[str, Any]] = {}
        self._channels: dict[int, dict[str, Any]] = {}
        self._messages: dict[int, list[dict[str, Any]]] = {}
        self._bot_messages: dict[int, list[dict[str, Any]]] = {}
        self._files: dict[tuple[int, int], list[bytes]] = {}  # (channel, message) -> bytes
        r = self.route
        r("GET", r"/users/@me", self._get_me)
        r("GET", r"/oauth2/applications/@me", self._get_app)
        r("GET", r"/applications/@me", self._get_app)
        r("GET", r"/gateway(/bot)?", self._get_gateway)
        r("GET", rf"/channels/{_ID}", self._get_channel)
        r("POST", rf"/channels/{_ID}/messages", self._create_message)
        r("GET", rf"/channels/{_ID}/messages/{_ID}", self._get_message)
        r("PATCH", rf"/channels/{_ID}/messages/{_ID}", self._edit_message)
        r("POST", rf"/channels/{_ID}/typing", self._typing)
        r("POST", r"/users/@me/channels", self._open_dm)
        r("GET", rf"/users/{_ID}", self._get_user)

    # ----- payload helpers -------------------------------------------------------------
    def bot_user(self) -> dict[str, Any]:
        return pl.user(self.bot_user_id, "stickerbot", bot=True)

    def _application(self) -> dict[str, Any]:
        return {
            "id": str(self.application_id),
            "name": "StickerBot",
            "description": "",
            "icon": None,
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "bot": self.bot_user(),
            "owner": pl.user(1, "owner"),
            "verify_key": "0" * 64,
            "team": None,
            "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
            "summary": "",
            "interactions_endpoint_url": None,
        }

    def _ready_payload(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            guilds = [{"id": str(g), "unavailable": True} for g in self._guilds]
        return {
            "v": 10,
            "user": self.bot_user(),
            "guilds": guilds,
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": [0, 1],
            "application": {"id": str(self.application_id), "flags": 1 << 19},
            "private_channels": [],
            "relationships": [],
            "user_settings": {},
        }

    def _guild_payloads(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(g) for g in self._guilds.values()]

    def _channel(self, channel_id: int) -> dict[str, Any]:
        with self._lock:
            channel = self._channels.get(channel_id)
        if channel is None:
            raise DiscordError(404, "Unknown Channel", 10003)
        return channel

    def _find_message(self, channel_id: int, message_id: int) -> dict[str, Any]:
        with self._lock:
            for m in self._messages.get(channel_id, []):
                if m["id"] == str(message_id):
                    return m
        raise DiscordError(404, "Unknown Message", 10008)

    def _store_message(self, msg: dict[str, Any], files: list[bytes] | None = None) -> None:
        channel_id, message_id = int(msg["channel_id"]), int(msg["id"])
        with self._cond:
            self._messages.setdefault(channel_id, []).append(msg)
            if msg["author"]["id"] == str(self.bot_user_id):
                self._bot_messages.setdefault(channel_id, []).append(msg)
            self._files[(channel_id, message_id)] = files or []
            self._cond.notify_all()

    def _bot_message(
        self, channel_id: int, body: dict[str, Any], *, guild_id: int | None
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Build the bot's message from a JSON or multipart body (validating it)."""
        files = body.get("files") if "payload_json" in body else None
        payload = (body.get("payload_json") or {}) if files is not None else body
        content = str(payload.get("content") or "")
        if len(content) > pl.MAX_CONTENT:
            raise _too_long()
        if (
            not content
            and not files
            and not payload.get("embeds")
            and not payload.get("sticker_ids")
            and not payload.get("components")
            and not int(payload.get("flags") or 0) & LOADING
        ):
            raise DiscordError(400, "Cannot send an empty message", 50006)
        message_id = pl.snowflake()
        attachments, datas = [], []
        for f in files or []:
            aid = pl.snowflake()
            url = self._store_cdn(
                f"attachments/{channel_id}/{aid}/{f['filename']}", f["data"], f["content_type"]
            )
            attachments.append(pl.attachment(aid, f["filename"], f["data"], f["content_type"], url))
            datas.append(f["data"])
        ref = payload.get("message_reference")
        referenced = None
        if isinstance(ref, dict) and ref.get("message_id"):
            referenced = self._find_message(channel_id, int(ref["message_id"]))
        msg = pl.message(
            message_id,
            channel_id,
            self.bot_user(),
            content,
            guild_id=guild_id,
            attachments=attachments,
            referenced=referenced,
            components=payload.get("components") or [],
            embeds=payload.get("embeds") or [],
        )
        msg["flags"] = int(payload.get("flags") or 0)
        return msg, datas

    # ----- routes ----------------------------------------------------------------------
    async def _get_me(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        return json_response({**self.bot_user(), "verified": True, "mfa_enabled": False})

    async def _get_app(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        return json_response(self._application())

    async def _get_gateway(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _get_channel(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        return json_response(self._channel(int(m.group(1))))

    async def _create_message(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        channel_id = int(m.group(1))
        channel = self._channel(channel_id)
        guild_id = int(channel["guild_id"]) if "guild_id" in channel else None
        msg, datas = self._bot_message(channel_id, body, guild_id=guild_id)
        self._store_message(msg, datas)
        await self._dispatch_all("MESSAGE_CREATE", copy.deepcopy(msg))
        return json_response(msg)

    async def _get_message(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        return json_response(self._find_message(int(m.group(1)), int(m.group(2))))

    async def _edit_message(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        msg = self._find_message(int(m.group(1)), int(m.group(2)))
        if msg["author"]["id"] != str(self.bot_user_id):
            raise DiscordError(403, "Cannot edit a message authored by another user", 50005)
        self._apply_edit(msg, body)
        await self._dispatch_all("MESSAGE_UPDATE", copy.deepcopy(msg))
        return json_response(msg)

    def _apply_edit(self, msg: dict[str, Any], body: dict[str, Any]) -> None:
        payload = (body.get("payload_json") or {}) if "payload_json" in body else body
        if "content" in payload:
            content = payload["content"] or ""
            if len(content) > pl.MAX_CONTENT:
                raise _too_long()
            msg["content"] = content
        for key in ("components", "embeds"):
            if key in payload:
                msg[key] = payload[key] or []
        if "flags" in payload:
            msg["flags"] = int(payload["flags"] or 0)
        msg["flags"] = int(msg.get("flags", 0)) & ~LOADING
        msg["edited_timestamp"] = pl.now_iso()

    async def _typing(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        self._channel(int(m.group(1)))
        return web.Response(status=204)

    async def _open_dm(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        recipient = body.get("recipient_id")
        if recipient is None:
            raise DiscordError(400, "Invalid Form Body", 50035)
        channel_id = self._make_dm(int(recipient))
        return json_response(self._channel(channel_id))

    async def _get_user(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        user_id = int(m.group(1))
        if user_id == self.bot_user_id:
            return json_response(self.bot_user())
        with self._lock:
            for ch in self._channels.values():
                if ch["type"] == 1 and ch["recipients"][0]["id"] == str(user_id):
                    return json_response(ch["recipients"][0])
        return json_response(pl.user(user_id, f"user{user_id}"))

    def _make_dm(self, user_id: int, username: str = "ann") -> int:
        with self._lock:
            for cid, ch in self._channels.items():
                if ch["type"] == 1 and ch["recipients"][0]["id"] == str(user_id):
                    return cid
            cid = pl.snowflake()
            self._channels[cid] = pl.dm_channel(cid, pl.user(user_id, username))
            return cid
