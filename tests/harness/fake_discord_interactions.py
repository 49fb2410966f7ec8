"""Application commands, interaction callbacks and webhook follow-ups of the fake
Discord server (PUT/GET /applications/{app}[/guilds/{g}]/commands,
POST /interactions/{id}/{token}/callback, /webhooks/{app}/{token}[/messages/...])."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from tests.harness import fake_discord_payloads as pl
from tests.harness.fake_discord_rest import LOADING, RestRoutes
from tests.harness.fake_discord_server import DiscordError, json_response

_ID = r"(\d+)"


class InteractionRoutes(RestRoutes):
    """Slash-command registry and interaction responses."""

    def __init__(self, token: str, bot_user_id: int, application_id: int) -> None:
        super().__init__(token, bot_user_id, application_id)
        self.application_commands: list[dict[str, Any]] = []
        self.interaction_responses: list[dict[str, Any]] = []
        self._commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id
        self._interactions: dict[str, dict[str, Any]] = {}  # token -> interaction
        r = self.route
        r("GET", rf"/applications/{_ID}/commands", self._get_commands)
        r("PUT", rf"/applications/{_ID}/commands", self._put_commands)
        r("GET", rf"/applications/{_ID}/guilds/{_ID}/commands", self._get_commands)
        r("PUT", rf"/applications/{_ID}/guilds/{_ID}/commands", self._put_commands)
        r("POST", rf"/interactions/{_ID}/([^/]+)/callback", self._callback)
        r("POST", rf"/webhooks/{_ID}/([^/]+)", self._followup)
        r("GET", rf"/webhooks/{_ID}/([^/]+)/messages/(@original|\d+)", self._webhook_message)
        r("PATCH", rf"/webhooks/{_ID}/([^/]+)/messages/(@original|\d+)", self._webhook_message)

    def _commands_key(self, m: re.Match[str]) -> str:
        if int(m.group(1)) != self.application_id:
            raise DiscordError(403, "Missing Access", 50001)
        return m.group(2) if m.re.groups >= 2 else "global"

    async def _get_commands(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        with self._lock:
            return json_response(self._commands.get(self._commands_key(m), []))

    async def _put_commands(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        key = self._commands_key(m)
        given = body.get("_", [])
        out = []
        for cmd in given:
            if not re.fullmatch(r"[-_\w]{1,32}", str(cmd.get("name", ""))):
                raise DiscordError(400, "Invalid Form Body", 50035)
            out.append(
                {
                    "id": str(pl.snowflake()),
                    "application_id": str(self.application_id),
                    "version": str(pl.snowflake()),
                    "type": 1,
                    "description": "",
                    "options": [],
                    "default_member_permissions": None,
                    "dm_permission": True,
                    "nsfw": False,
                    **({"guild_id": key} if key != "global" else {}),
                    **cmd,
                }
            )
        with self._cond:
            self._commands[key] = out
            self.application_commands[:] = [c for cmds in self._commands.values() for c in cmds]
            self._cond.notify_all()
        return json_response(out)

    async def _callback(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        token = m.group(2)
        with self._lock:
            inter = self._interactions.get(token)
        if inter is None or inter["id"] != m.group(1):
            raise DiscordError(404, "Unknown interaction", 10062)
        if inter.get("_answered"):
            raise DiscordError(400, "Interaction has already been acknowledged.", 40060)
        inter["_answered"] = True
        payload = (body.get("payload_json") or {}) if "payload_json" in body else body
        with self._cond:
            self.interaction_responses.append(
                {"interaction_id": inter["id"], "token": token, **body}
            )
            self._cond.notify_all()
        rtype = int(payload.get("type", 0))
        result: dict[str, Any] = {
            "interaction": {
                "id": inter["id"],
                "type": inter["type"],
                "response_message_loading": rtype == 5,
                "response_message_ephemeral": bool(
                    (payload.get("data") or {}).get("flags", 0) & 64
                ),
            },
        }
        channel_id = int(inter["channel_id"])
        if rtype in (4, 5):
            msg, datas = self._bot_message(
                channel_id,
                self._as_message_body(body, rtype == 5),
                guild_id=int(inter["guild_id"]) if "guild_id" in inter else None,
            )
            msg["interaction_metadata"] = {
                "id": inter["id"],
                "type": inter["type"],
                "user": inter.get("user") or inter["member"]["user"],
            }
            inter["_original"] = msg
            self._store_message(msg, datas)
            result["interaction"]["response_message_id"] = msg["id"]
            result["resource"] = {"type": rtype, "message": msg}
        elif rtype == 7 and "message" in inter:
            target = self._find_message(channel_id, int(inter["message"]["id"]))
            self._apply_edit(target, self._as_message_body(body, False))
            result["resource"] = {"type": rtype, "message": target}
        else:
            result["resource"] = {"type": rtype}
        return json_response(result)

    @staticmethod
    def _as_message_body(body: dict[str, Any], deferred: bool) -> dict[str, Any]:
        """The message part ("data") of a callback body, kept JSON or multipart; a deferred
        response makes an empty "is thinking" message (flag LOADING) edited later."""
        multipart = "payload_json" in body
        payload = (body.get("payload_json") or {}) if multipart else body
        data = dict(payload.get("data") or {})
        if deferred:
            data = {"content": "", "flags": LOADING | (int(data.get("flags") or 0) & 64)}
        return {"payload_json": data, "files": body.get("files", [])} if multipart else data

    async def _followup(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        inter = self._interaction_for(m)
        with self._cond:
            self.interaction_responses.append({"followup": True, "token": m.group(2), **body})
            self._cond.notify_all()
        msg, datas = self._bot_message(
            int(inter["channel_id"]),
            body,
            guild_id=int(inter["guild_id"]) if "guild_id" in inter else None,
        )
        self._store_message(msg, datas)
        return json_response(msg)

    async def _webhook_message(
        self, request: web.Request, body: dict[str, Any], m: re.Match[str]
    ) -> web.Response:
        inter = self._interaction_for(m)
        channel_id = int(inter["channel_id"])
        if m.group(3) == "@original":
            if "_original" not in inter:
                raise DiscordError(404, "Unknown Message", 10008)
            msg = inter["_original"]
        else:
            msg = self._find_message(channel_id, int(m.group(3)))
        if request.method == "PATCH":
            with self._cond:
                self.interaction_responses.append({"edit": m.group(3), "token": m.group(2), **body})
                self._cond.notify_all()
            self._apply_edit(msg, body)
        return json_response(msg)

    def _interaction_for(self, m: re.Match[str]) -> dict[str, Any]:
        if int(m.group(1)) != self.application_id:
            raise DiscordError(404, "Unknown Webhook", 10015)
        with self._lock:
            inter = self._interactions.get(m.group(2))
        if inter is None:
            raise DiscordError(401, "Invalid Webhook Token", 50027)
        return inter
