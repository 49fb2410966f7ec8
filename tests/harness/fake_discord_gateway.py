"""The gateway of the fake Discord server: a real websocket at /gateway speaking JSON
(text frames, or one zlib stream of binary frames when the URL asks for
compress=zlib-stream, as discord.py 2.7 does without zstandard installed).

HELLO -> the client's HEARTBEATs are ACKed -> IDENTIFY gets READY and a GUILD_CREATE per
guild -> dispatches carry increasing sequence numbers per session. Every dispatch is kept
in its session's log, so a RESUME replays what the client missed, then RESUMED.
"""

from __future__ import annotations

import json
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.harness.fake_discord_server import FakeDiscordServer

HEARTBEAT_INTERVAL_MS = 20_000


@dataclass
class _Session:
    session_id: str
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None
    compressor: Any = None
    resumable: bool = True


class GatewayMixin(FakeDiscordServer):
    """Websocket sessions and dispatch; needs _ready_payload and _guild_payloads."""

    def __init__(self, token: str, bot_user_id: int, application_id: int) -> None:
        super().__init__(token, bot_user_id, application_id)
        self.gateway_events: list[tuple[str, dict[str, Any]]] = []
        self.identify_count = 0
        self.resume_count = 0
        self.gateway_connections: list[dict[str, str]] = []  # query of each websocket
        self._sessions: dict[str, _Session] = {}
        self._sockets: set[web.WebSocketResponse] = set()

    # overridden by FakeDiscord
    def _ready_payload(self, session_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def _guild_payloads(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    # ----- sending ---------------------------------------------------------------------
    @staticmethod
    async def _send(ws: web.WebSocketResponse, compressor: Any, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        if compressor is None:
            await ws.send_str(text)
        else:
            await ws.send_bytes(
                compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
            )

    async def _dispatch_to(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.log.append(frame)
        ws = session.ws
        if ws is not None and not ws.closed:
            try:
                await self._send(ws, session.compressor, frame)
            except (ConnectionError, RuntimeError):
                session.ws = None  # kept in the log; a RESUME replays it

    async def _dispatch_all(self, event: str, data: dict[str, Any]) -> int:
        """Dispatch to every session (connected or awaiting RESUME); returns how many."""
        sessions = [s for s in self._sessions.values() if s.resumable]
        for session in sessions:
            await self._dispatch_to(session, event, data)
        return len(sessions)

    def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send a raw dispatch (op 0) to every session from a test; returns how many."""
        return self._run_sync(self._dispatch_all(event, data))

    # ----- faults ----------------------------------------------------------------------
    def drop_connection(self, *, resumable: bool = True) -> None:
        """Close every open gateway websocket with code 4000 so the client reconnects.

        resumable=True: the client RESUMEs and gets what was dispatched in between.
        resumable=False: RESUME is answered with INVALID_SESSION (op 9, d=false), so the
        client IDENTIFYs again (discord.py sleeps 5 s in before_identify_hook first)."""
        self._run_sync(self._drop(resumable))

    async def _drop(self, resumable: bool) -> None:
        for session in list(self._sessions.values()):
            ws, session.ws = session.ws, None
            if not resumable:
                session.resumable = False
            if ws is not None and not ws.closed:
                await ws.close(code=4000, message=b"fake drop")

    async def _close_gateways(self) -> None:
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.close(code=1001, message=b"server stopping")

    # ----- the websocket ---------------------------------------------------------------
    async def _gateway_route(self, request: web.Request) -> web.StreamResponse:
        with self._cond:
            self.gateway_connections.append(dict(request.query))
        compress = request.query.get("compress")
        if compress not in (None, "zlib-stream"):
            # zstd-stream is not spoken here; fall back to plain JSON text frames, which
            # discord.py reads without decompressing.
            compress = None
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        compressor = zlib.compressobj() if compress == "zlib-stream" else None
        session: _Session | None = None
        try:
            await self._send(
                ws,
                compressor,
                {
                    "op": 10,
                    "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS},
                    "s": None,
                    "t": None,
                },
            )
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        await ws.close(code=4002, message=b"Error while decoding payload.")
                    continue
                try:
                    payload = json.loads(msg.data)
                except json.JSONDecodeError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                session = await self._on_op(ws, compressor, session, payload)
        finally:
            self._sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
        return ws

    def _record(self, name: str, data: Any) -> None:
        with self._cond:
            self.gateway_events.append((name, data if isinstance(data, dict) else {"d": data}))
            if name == "IDENTIFY":
                self.identify_count += 1
            elif name == "RESUME":
                self.resume_count += 1
            self._cond.notify_all()

    async def _on_op(
        self,
        ws: web.WebSocketResponse,
        compressor: Any,
        session: _Session | None,
        payload: dict[str, Any],
    ) -> _Session | None:
        op, data = payload.get("op"), payload.get("d")
        names = {
            1: "HEARTBEAT",
            2: "IDENTIFY",
            3: "PRESENCE_UPDATE",
            4: "VOICE_STATE_UPDATE",
            6: "RESUME",
            8: "REQUEST_GUILD_MEMBERS",
        }
        self._record(names.get(op, f"OP_{op}"), data)
        if op == 1:
            await self._send(ws, compressor, {"op": 11, "d": None, "s": None, "t": None})
            return session
        if op == 2:
            if not isinstance(data, dict) or data.get("token") != self.token:
                await ws.close(code=4004, message=b"Authentication failed.")
                return session
            session = _Session(secrets.token_hex(16), ws=ws, compressor=compressor)
            self._sessions[session.session_id] = session
            await self._dispatch_to(session, "READY", self._ready_payload(session.session_id))
            for guild in self._guild_payloads():
                await self._dispatch_to(session, "GUILD_CREATE", guild)
            return session
        if op == 6:
            return await self._resume(ws, compressor, data if isinstance(data, dict) else {})
        return session

    async def _resume(
        self, ws: web.WebSocketResponse, compressor: Any, data: dict[str, Any]
    ) -> _Session | None:
        found = self._sessions.get(str(data.get("session_id")))
        if found is None or not found.resumable or data.get("token") != self.token:
            await self._send(ws, compressor, {"op": 9, "d": False, "s": None, "t": None})
            return None
        old = found.ws
        found.ws, found.compressor = ws, compressor
        if old is not None and old is not ws and not old.closed:
            await old.close(code=4000)
        seq = data.get("seq") or 0
        for frame in [f for f in found.log if f["s"] > seq]:
            await self._send(ws, compressor, frame)
        await self._dispatch_to(found, "RESUMED", {})
        return found

    def wait_for_gateway(self, name: str, count: int = 1, *, timeout: float = 15.0) -> None:
        """Block until the client sent `count` ops named `name` (IDENTIFY, RESUME...)."""
        self._wait_until(
            lambda: sum(1 for n, _ in self.gateway_events if n == name) >= count,
            timeout,
            f"{count} {name}",
        )
