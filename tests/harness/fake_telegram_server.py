"""Core of the fake Telegram Bot API: its thread and event loop, HTTP routing, request
decoding, call recording and injected failures. Update delivery (getUpdates and the
webhook) is in fake_telegram_delivery, the Bot API methods in fake_telegram_methods.

State is guarded by one threading lock: tests call in from their own thread while the
handlers run on the server's loop thread.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.harness.background_loop import start_background_loop
from tests.harness.fake_telegram_text import ApiError, decode_field

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_size: int
    file_path: str


@dataclass
class _Queued:
    update: dict[str, Any]
    redelivered: bool = False
    sent: bool = False


@dataclass
class _Failure:
    status: int
    count: int
    retry_after: int | None
    description: str | None


@dataclass
class _State:
    queue: list[_Queued] = field(default_factory=list)
    files: dict[str, StoredFile] = field(default_factory=dict)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    bot_messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_message_id: dict[int, int] = field(default_factory=dict)
    failures: dict[str, list[_Failure]] = field(default_factory=dict)
    callback_queries: dict[str, bool] = field(default_factory=dict)  # id -> answered
    commands: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    allowed_updates: list[str] = field(default_factory=list)


def _brief(value: Any) -> Any:
    """An uploaded file shown by name and size, for assertion messages."""
    if isinstance(value, dict) and isinstance(value.get("data"), bytes):
        return f"<upload {value.get('filename')} {len(value['data'])} bytes>"
    return value


class FakeTelegramServer:
    """Lifecycle, routing and delivery; subclasses register method handlers."""

    def __init__(self, token: str, bot_username: str) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456
        self.root_url = ""
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.webhook: dict[str, Any] | None = None
        self.webhook_deliveries: list[dict[str, Any]] = []
        self._webhook_error: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._s = _State()
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(700_000_001)
        self._handlers: dict[str, tuple[str, Handler]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._arrived: asyncio.Event | None = None
        self._poll_generation = 0
        self._closing = False
        self._webhook_queue: asyncio.Queue[dict[str, Any]] | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # ----- lifecycle -----------------------------------------------------------------
    def register(self, name: str, handler: Handler) -> None:
        self._handlers[name.lower()] = (name, handler)

    def _start_server(self) -> None:
        self._loop, self._thread = start_background_loop(self._serve, "fake Telegram server")

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/file/{bot}/{path:.+}", self._file_route)
        app.router.add_route("*", "/{bot}/{method}", self._method_route)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.root_url = f"http://127.0.0.1:{port}"
        await self._on_serving()

    async def _on_serving(self) -> None:
        """On the loop, once serving: subclasses start their own loop-side parts."""

    async def _on_stopping(self) -> None:
        """On the loop, before the HTTP server closes."""

    def _stop_server(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        self._closing = True

        async def shutdown() -> None:
            await self._on_stopping()
            if self._runner:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(15)
        self._loop = self._thread = None

    # ----- HTTP ------------------------------------------------------------------------
    async def _method_route(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["bot"] != f"bot{self.token}":
            if request.match_info["bot"].startswith("bot"):
                return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        entry = self._handlers.get(request.match_info["method"].lower())
        try:
            params = await self._read_params(request)
        except ApiError as exc:
            return web.json_response(exc.body(), status=exc.status)
        name = entry[0] if entry else request.match_info["method"]
        with self._cond:
            self.calls.append((name, params))
            self._cond.notify_all()
        if entry is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        failure = self._take_failure(name)
        if failure is not None:
            return failure
        try:
            result = await entry[1](params)
        except ApiError as exc:
            return web.json_response(exc.body(), status=exc.status)
        return web.json_response({"ok": True, "result": result})

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        ctype = request.content_type
        if ctype == "application/json":
            body = await request.json() if request.can_read_body else {}
            if not isinstance(body, dict):
                raise ApiError(400, "Bad Request: can't parse JSON object")
            return {**raw, **body}
        if ctype == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    raw[part.name] = {
                        "filename": part.filename,
                        "content_type": part.headers.get(
                            "Content-Type", "application/octet-stream"
                        ),
                        "data": bytes(await part.read()),
                    }
                else:
                    raw[part.name] = await part.text()
        elif request.can_read_body:
            raw.update(await request.post())
        return {k: decode_field(k, v) for k, v in raw.items()}

    async def _file_route(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["bot"] != f"bot{self.token}":
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        path = request.match_info["path"]
        with self._lock:
            found = next((f for f in self._s.files.values() if f.file_path == path), None)
        if found is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        return web.Response(body=found.data, content_type="application/octet-stream")

    # ----- failures and recording ----------------------------------------------------------
    def fail_next(
        self,
        method: str,
        status: int,
        *,
        count: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """Make the next `count` calls of `method` fail with this HTTP status."""
        with self._lock:
            self._s.failures.setdefault(method.lower(), []).append(
                _Failure(status, count, retry_after, description)
            )

    def _take_failure(self, method: str) -> web.Response | None:
        with self._lock:
            pending = self._s.failures.get(method.lower())
            if not pending:
                return None
            failure = pending[0]
            failure.count -= 1
            if failure.count <= 0:
                pending.pop(0)
        if failure.status in (502, 503, 504) and failure.description is None:
            return web.Response(
                text=_HTML_502.replace("502 Bad Gateway", f"{failure.status} Bad Gateway"),
                status=failure.status,
                content_type="text/html",
            )
        description = failure.description
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {failure.retry_after or 1}",
                400: "Bad Request",
                401: "Unauthorized",
                403: "Forbidden",
                409: "Conflict",
                500: "Internal Server Error",
            }.get(failure.status, "Error")
        retry_after = failure.retry_after
        if failure.status == 429 and retry_after is None:
            retry_after = 1
        err = ApiError(failure.status, description, retry_after=retry_after)
        return web.json_response(err.body(), status=failure.status)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """Parameters of every call of `method` so far (failed ones included), in order."""
        with self._lock:
            return [p for m, p in self.calls if m.lower() == method.lower()]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        *,
        timeout: float = 15.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Block until `count` matching calls of `method` arrived; return all matching."""
        deadline = time.monotonic() + timeout

        def matching() -> list[dict[str, Any]]:
            return [
                p
                for m, p in self.calls
                if m.lower() == method.lower() and (where is None or where(p))
            ]

        with self._cond:
            while len(found := matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m, {k: _brief(v) for k, v in p.items()}) for m, p in self.calls[-30:]]
                    raise AssertionError(
                        f"expected {count} call(s) of {method}, got {len(found)} in {timeout}s; "
                        f"last calls: {seen}"
                    )
                self._cond.wait(left)
            return found
