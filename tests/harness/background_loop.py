"""An asyncio loop on a daemon thread, for fake servers that sync and async tests share."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable


def start_background_loop(
    setup: Callable[[], Awaitable[None]], name: str, *, timeout_s: float = 15.0
) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """Run `setup()` on a new loop in a thread, then keep that loop running.

    Returns once setup finished; an error in it is raised here, in the caller.
    """
    ready = threading.Event()
    errors: list[BaseException] = []
    holder: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        holder.append(loop)
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(setup())
        except BaseException as exc:  # reported to the caller
            errors.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if not ready.wait(timeout_s) or errors:
        raise RuntimeError(f"{name} did not start: {errors}")
    return holder[0], thread
