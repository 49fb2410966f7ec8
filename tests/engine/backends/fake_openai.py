"""A small OpenAI-compatible chat server on 127.0.0.1 that answers with a real backend.

`FakeOpenAI(backend)` serves POST /v1/chat/completions through `backend.complete`
(the local SmolLM2 in the tests). Queue misbehaviour with `script(...)`: each request
takes the next item: "ok", "500", "429" (with Retry-After: 0), "slow" (sleeps past the
client timeout, then answers), "broken" (HTTP 200 with a body that is not JSON) or
"text:<content>" (a well-formed answer whose content is the given text, e.g. malformed
JSON for structured-output tests). The server records each request's headers and body
and the most requests it ever served at once. GET /v1/models lists `models`; with
`api_key` set, requests without that bearer key get 401.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine.backends import ChatBackend


class FakeOpenAI:
    def __init__(self, backend: ChatBackend, *, slow_s: float = 2.0,
                 answer_delay_s: float = 0.0, models: tuple[str, ...] = ("smollm2",),
                 api_key: str = "") -> None:
        self.backend = backend
        self.models = models
        self.api_key = api_key
        self.slow_s = slow_s
        self.answer_delay_s = answer_delay_s
        self.requests: list[dict[str, Any]] = []
        self.plan: deque[str] = deque()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # http.server's naming
                fake._handle(self)

            def do_GET(self) -> None:
                fake._list_models(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def script(self, *behaviours: str) -> None:
        with self._lock:
            self.plan.extend(behaviours)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next(self) -> str:
        with self._lock:
            return self.plan.popleft() if self.plan else "ok"

    def _refused(self, handler: BaseHTTPRequestHandler) -> bool:
        if self.api_key and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._send(handler, 401, {"error": {"message": "invalid api key"}})
            return True
        return False

    def _list_models(self, handler: BaseHTTPRequestHandler) -> None:
        if self._refused(handler):
            return
        if handler.path != "/v1/models":
            return self._send(handler, 404, {"error": {"message": "not found"}})
        self._send(handler, 200, {"object": "list", "data": [
            {"id": name, "object": "model", "owned_by": "fake"} for name in self.models]})

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        if self._refused(handler):
            return
        with self._lock:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers),
                                  "body": body})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._answer(handler, body, self._next())
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any],
                behaviour: str) -> None:
        if handler.path != "/v1/chat/completions":
            return self._send(handler, 404, {"error": {"message": "not found"}})
        if behaviour in ("500", "429"):
            headers = {"Retry-After": "0"} if behaviour == "429" else {}
            return self._send(handler, int(behaviour), {"error": {"message": behaviour}},
                              headers)
        if behaviour == "slow":  # the client has given up by the time this answers
            time.sleep(self.slow_s)
            behaviour = "text:too late"
        if behaviour == "broken":
            return self._send_raw(handler, 200, b'{"choices": [ {"message": ')
        if self.answer_delay_s:
            time.sleep(self.answer_delay_s)
        if behaviour.startswith("text:"):
            text, prompt, completion = behaviour[5:], 10, 5
        else:
            result = self.backend.complete([body["messages"]],
                                           max_tokens=int(body.get("max_tokens", 16)),
                                           temperature=float(body.get("temperature", 0.7)),
                                           seed=int(body.get("seed", 0)))[0]
            text, prompt, completion = (result.text, result.prompt_tokens,
                                        result.completion_tokens)
        return self._send(handler, 200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        })

    def _send(self, handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        self._send_raw(handler, status, json.dumps(payload).encode(), headers)

    @staticmethod
    def _send_raw(handler: BaseHTTPRequestHandler, status: int, data: bytes,
                  headers: dict[str, str] | None = None) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass
