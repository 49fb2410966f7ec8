"""Core of the fake Discord server: its thread and event loop, the aiohttp app (REST
under /api/v10, the gateway websocket at /gateway, the CDN under /cdn), request
decoding, recording, injected failures and wait_for.

State is guarded by one threading lock: tests call in from their own thread while the
handlers run on the server's loop thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from tests.harness.background_loop import start_background_loop

T = TypeVar("T")
RestHandler = Callable[[web.Request, dict[str, Any], "re.Match[str]"], Awaitable[web.Response]]


class DiscordError(Exception):
    """A REST failure: becomes {"message", "code"[, "errors"]} with this HTTP status."""

    def __init__(
        self, status: int, message: str, code: int = 0, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.errors = errors

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with Content-Type exactly application/json (discord.py parses nothing else)."""
    resp = web.Response(body=json.dumps(body).encode(), status=status, headers=headers)
    resp.headers["Content-Type"] = "application/json"
    return resp


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    count: int
    retry_after: float | None
    global_: bool


def _brief(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _brief(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_brief(v) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


class FakeDiscordServer:
    """Lifecycle, routing, recording and failures; subclasses add routes and the gateway."""

    def __init__(self, token: str, bot_user_id: int, application_id: int) -> None:
        self.token = token
        self.bot_user_id = bot_user_id
        self.application_id = application_id
        self.base_url = ""
        self.api_url = ""
        self.gateway_url = ""
        self.cdn_url = ""
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._failures: list[_Failure] = []
        self._routes: list[tuple[str, re.Pattern[str], RestHandler]] = []
        self._cdn: dict[str, tuple[bytes, str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # ----- lifecycle -----------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: RestHandler) -> None:
        """Register a REST handler for `method` and a full-match regex of the path."""
        self._routes.append((method.upper(), re.compile(pattern), handler))

    def _start_server(self) -> None:
        self._loop, self._thread = start_background_loop(self._serve, "fake Discord server")

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("GET", "/gateway", self._gateway_route)
        app.router.add_route("GET", "/cdn/{path:.+}", self._cdn_route)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest_route)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_url = self.base_url + "/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        self.cdn_url = self.base_url + "/cdn"

    def _stop_server(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            self._run_sync(self._shutdown(), timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            self._loop = None

    async def _shutdown(self) -> None:
        await self._close_gateways()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _close_gateways(self) -> None:  # overridden by the gateway
        return None

    def _run_sync(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the server's loop from another thread and wait for it."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the fake Discord server is not running; call start()")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _gateway_route(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError  # the gateway mixin overrides this

    # ----- CDN -------------------------------------------------------------------------
    def _store_cdn(self, path: str, data: bytes, content_type: str) -> str:
        """Serve bytes at {cdn_url}/{path}; returns the full URL."""
        with self._lock:
            self._cdn[path] = (data, content_type)
        return f"{self.cdn_url}/{path}"

    async def _cdn_route(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            found = self._cdn.get(request.match_info["path"])
        if found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found[0], content_type=found[1])

    # ----- REST ------------------------------------------------------------------------
    async def _rest_route(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        try:
            body = await self._read_body(request)
        except DiscordError as exc:
            return exc.response()
        with self._cond:
            self.requests.append((request.method, path, body))
            self._cond.notify_all()
        failure = self._take_failure(request.method, path)
        if failure is not None:
            return failure
        public = path.startswith(("/interactions/", "/webhooks/"))
        if not public and request.headers.get("Authorization") != f"Bot {self.token}":
            return DiscordError(401, "401: Unauthorized", 0).response()
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and method == request.method:
                try:
                    return await handler(request, body, match)
                except DiscordError as exc:
                    return exc.response()
        return DiscordError(404, "404: Not Found", 0).response()

    @staticmethod
    async def _read_body(request: web.Request) -> dict[str, Any]:
        ctype = request.content_type
        if ctype == "multipart/form-data":
            out: dict[str, Any] = {"payload_json": None, "files": []}
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    out["files"].append(
                        {
                            "name": part.name,
                            "filename": part.filename,
                            "content_type": part.headers.get(
                                "Content-Type", "application/octet-stream"
                            ),
                            "data": bytes(await part.read()),
                        }
                    )
                elif part.name == "payload_json":
                    out["payload_json"] = json.loads(await part.text())
            return out
        if not request.can_read_body:
            return {}
        raw = await request.read()
        if not raw:
            return {}
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DiscordError(400, "400: Bad Request", 50109) from exc
        return parsed if isinstance(parsed, dict) else {"_": parsed}

    # ----- failures ----------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        count: int = 1,
        retry_after: float | None = None,
        global_: bool = False,
    ) -> None:
        """Make the next `count` requests matching (method, full-match regex of the path
        under /api/v10) fail with `status`. A 429 carries Via, retry_after and X-RateLimit
        headers as Discord sends them, so discord.py waits and retries."""
        with self._lock:
            self._failures.append(
                _Failure(
                    method.upper(), re.compile(path_pattern), status, count, retry_after, global_
                )
            )

    def _take_failure(self, method: str, path: str) -> web.Response | None:
        with self._lock:
            failure = next(
                (
                    f
                    for f in self._failures
                    if f.method == method and f.pattern.fullmatch(path) and f.count > 0
                ),
                None,
            )
            if failure is None:
                return None
            failure.count -= 1
            if failure.count <= 0:
                self._failures.remove(failure)
        if failure.status == 429:
            retry = failure.retry_after if failure.retry_after is not None else 1.0
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, int(retry + 0.999))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
                "X-RateLimit-Reset-After": f"{retry:.3f}",
                "X-RateLimit-Bucket": "fakebucket"
                + str(abs(hash(failure.pattern.pattern)) % 10**8),
                "X-RateLimit-Scope": "global" if failure.global_ else "user",
            }
            if failure.global_:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": retry,
                "global": failure.global_,
                "code": 0,
            }
            return json_response(body, status=429, headers=headers)
        messages = {
            400: "400: Bad Request",
            401: "401: Unauthorized",
            403: "Missing Access",
            404: "Unknown Message",
            500: "500: Internal Server Error",
            502: "502: Bad Gateway",
            503: "503: Service Unavailable",
        }
        codes = {403: 50001, 404: 10008}
        return DiscordError(
            failure.status, messages.get(failure.status, "Error"), codes.get(failure.status, 0)
        ).response()

    # ----- inspection --------------------------------------------------------------------
    def requests_to(self, method: str, path_pattern: str) -> list[dict[str, Any]]:
        """Bodies of every request matching method and a full-match path regex (failed ones too)."""
        pattern = re.compile(path_pattern)
        with self._lock:
            return [b for m, p, b in self.requests if m == method.upper() and pattern.fullmatch(p)]

    def wait_for(
        self,
        method: str,
        path_pattern: str,
        count: int = 1,
        *,
        timeout: float = 15.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Block until `count` matching requests arrived; return all matching bodies.

        Blocks its thread: from a coroutine on the loop that runs discord.py, call it via
        asyncio.to_thread."""
        deadline = time.monotonic() + timeout
        pattern = re.compile(path_pattern)

        def matching() -> list[dict[str, Any]]:
            return [
                b
                for m, p, b in self.requests
                if m == method.upper() and pattern.fullmatch(p) and (where is None or where(b))
            ]

        with self._cond:
            while len(found := matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m, p, _brief(b)) for m, p, b in self.requests[-30:]]
                    raise AssertionError(
                        f"expected {count} {method} {path_pattern} request(s), got {len(found)} "
                        f"in {timeout}s; last requests: {seen}"
                    )
                self._cond.wait(left)
            return found

    def _wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self._cond.wait(left)
