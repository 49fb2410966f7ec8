"""Keeping a chat's "typing..." indicator up while a reply is made.

Platforms clear the indicator after a few seconds (Telegram ~5 s, Discord ~10 s), so it
is sent again every `every_s` until the body is done. A failed indicator is logged at
DEBUG and never costs the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def keep_typing(trigger: Callable[[], Awaitable[Any]],
                      every_s: float) -> AsyncIterator[None]:
    """Call `trigger()` now and every `every_s` seconds while the body runs."""

    async def refresh() -> None:
        while True:
            try:
                await trigger()
            except Exception as error:  # a missing indicator must never cost the reply
                log.debug("typing indicator failed: %s", type(error).__name__)
            await asyncio.sleep(every_s)

    task = asyncio.create_task(refresh())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
