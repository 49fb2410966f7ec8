"""`stickerbot serve` as its own process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 300  # the first start converts the GGUF model (~20 s, more under load)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(data_dir: Path, pack_root: Path, model_cache: Path,
                **env: str) -> tuple[subprocess.Popen, str, Path]:
    """Start `stickerbot serve` on a fresh port with the session's sticker pack and wait
    until /healthz answers; returns the process, its base URL and its log file. Extra
    keyword arguments become environment variables."""
    (data_dir / "stickers").symlink_to(pack_root)
    port = free_port()
    env = dict(os.environ, STICKERBOT_DATA_DIR=str(data_dir), STICKERBOT_HTTP_PORT=str(port),
               STICKERBOT_MODEL_CACHE=str(model_cache), **env)
    log_path = data_dir / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, str(REPO / "stickerbot.py"), "serve"],
                                   cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"stickerbot serve exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base, log_path
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"stickerbot serve did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)


@contextmanager
def chat_client(base: str, **kwargs) -> Iterator[httpx.Client]:
    """An HTTP client of the web chat at `base` that writes as one person: it takes a
    token from POST /api/chat/session, as a script does, and sends it as a bearer."""
    with httpx.Client(base_url=base, **kwargs) as client:
        session = client.post("/api/chat/session")
        session.raise_for_status()
        client.headers["Authorization"] = f"Bearer {session.json()['token']}"
        yield client


@contextmanager
def serve(data_dir: Path, pack_root: Path, model_cache: Path,
          **env: str) -> Iterator[tuple[str, Path]]:
    """`start_serve` as a context: yields the base URL and the log file, and stops the
    process with SIGINT at the end."""
    process, base, log_path = start_serve(data_dir, pack_root, model_cache, **env)
    try:
        yield base, log_path
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("stickerbot serve did not stop on SIGINT")
