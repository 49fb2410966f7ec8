"""Proxy headers (X-Forwarded-For) are believed only from configured proxies: a local
client cannot pick its address, so the per-address limits hold (issue 21)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request

from bots.serve import web_server
from settings import Settings
from tests.bots.web_helpers import start_in_thread
from tests.serve_process import free_port


def client_address_seen(settings: Settings) -> str:
    app = FastAPI()

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, str]:
        return {"host": request.client.host if request.client else ""}

    port = free_port()
    server = web_server(settings.model_copy(update={"http_port": port}), app)
    thread = start_in_thread(server)
    try:
        return httpx.get(f"http://127.0.0.1:{port}/whoami",
                         headers={"X-Forwarded-For": "203.0.113.9"}).json()["host"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_loopback_client_cannot_pick_its_address(tmp_path) -> None:
    assert client_address_seen(Settings(data_dir=tmp_path)) == "127.0.0.1"


def test_a_configured_proxy_is_believed(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, trusted_proxies="127.0.0.1")
    assert client_address_seen(settings) == "203.0.113.9"
