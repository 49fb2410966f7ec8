"""Update delivery of the fake Telegram Bot API: the getUpdates queue (offset
confirmation, long polling, the 409 for a competing poll) and webhook POSTs with the
secret header and retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.harness.fake_telegram_server import FakeTelegramServer, _Queued
from tests.harness.fake_telegram_text import ApiError

WEBHOOK_ATTEMPTS = 3
WEBHOOK_RETRY_DELAY_S = 0.2


class UpdateDelivery(FakeTelegramServer):
    """Hands updates to getUpdates or to the webhook."""

    async def _on_serving(self) -> None:
        self._arrived = asyncio.Event()
        self._webhook_queue = asyncio.Queue()
        self._session = aiohttp.ClientSession()
        self._webhook_task = asyncio.create_task(self._webhook_worker())

    async def _on_stopping(self) -> None:
        self._wake()
        if self._webhook_task:
            self._webhook_task.cancel()
        if self._session:
            await self._session.close()

    def _wake(self) -> None:
        """On the loop thread: wake every long-polling getUpdates."""
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = asyncio.Event()

    def _call_in_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _deliver(self, update: dict[str, Any], *, redelivered: bool = False) -> None:
        """Hand an update over: to the webhook when one is set, else to the getUpdates queue."""
        with self._lock:
            if self.webhook is not None and self._webhook_queue is not None:
                self._call_in_loop(self._webhook_queue.put_nowait, update)
                return
            self._s.queue.append(_Queued(update, redelivered=redelivered))
        self._call_in_loop(self._wake)

    def _take_updates(self, offset: int | None, limit: int) -> list[dict[str, Any]]:
        """Confirm by offset, then pick what to deliver (under the lock).

        Like Telegram: an update is kept until a getUpdates call carries an offset above
        its update_id, so an unconfirmed update comes again. A negative offset keeps only
        the last -offset updates. A redelivered update (redeliver()) has an id the client
        has already confirmed; the fake hands it out once more anyway (exactly what the
        real server does when it re-sends an update, e.g. after a server-side restart) and
        drops it at the next call whose offset is above its id.
        """
        q = self._s.queue
        if offset is not None and offset < 0:
            keep = [e for e in q if not e.redelivered][offset:]
            q[:] = [e for e in q if e.redelivered] + keep
        elif offset is not None:
            q[:] = [
                e for e in q if e.update["update_id"] >= offset or (e.redelivered and not e.sent)
            ]
        allowed = self._s.allowed_updates
        out = []
        for entry in list(q):
            kind = next((k for k in entry.update if k != "update_id"), "")
            if allowed and kind not in allowed:
                q.remove(entry)
                continue
            if len(out) < limit:
                entry.sent = True
                out.append(entry.update)
        return out

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        limit = max(1, min(100, params.get("limit", 100)))
        wait_s = max(0, min(50, params.get("timeout", 0)))
        if "allowed_updates" in params and isinstance(params["allowed_updates"], list):
            self._s.allowed_updates = params["allowed_updates"]
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # an older long poll still waiting is now terminated (409)
        deadline = time.monotonic() + wait_s
        while True:
            with self._lock:
                found = self._take_updates(params.get("offset"), limit)
            if found or self._closing or time.monotonic() >= deadline:
                return found
            arrived = self._arrived
            assert arrived is not None
            try:
                await asyncio.wait_for(arrived.wait(), deadline - time.monotonic())
            except TimeoutError:
                pass
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )

    async def _webhook_worker(self) -> None:
        assert self._webhook_queue is not None and self._session is not None
        while True:
            update = await self._webhook_queue.get()
            await self._post_to_webhook(update)

    async def _post_to_webhook(self, update: dict[str, Any]) -> None:
        assert self._session is not None
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            hook = self.webhook
            if hook is None:
                break
            headers = {"Content-Type": "application/json"}
            if hook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            record: dict[str, Any] = {
                "update_id": update["update_id"],
                "url": hook["url"],
                "attempt": attempt,
            }
            try:
                async with self._session.post(
                    hook["url"],
                    json=update,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as resp:
                    record["status"] = resp.status
                    if 200 <= resp.status < 300:
                        self.webhook_deliveries.append(record)
                        return
                    self._webhook_error = (
                        int(time.time()),
                        f"Wrong response from the webhook: {resp.status} {resp.reason}",
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                record["error"] = repr(exc)
                self._webhook_error = (int(time.time()), "Connection refused")
            self.webhook_deliveries.append(record)
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(WEBHOOK_RETRY_DELAY_S * attempt)
        # Not delivered: kept pending (getWebhookInfo counts it; getUpdates gets it after
        # deleteWebhook; a new setWebhook sends it again). Telegram would keep retrying.
        with self._lock:
            self._s.queue.append(_Queued(update))

    def _flush_to_webhook(self) -> None:
        """setWebhook: pending updates now go to the webhook (under the lock, on the loop)."""
        assert self._webhook_queue is not None
        for entry in self._s.queue:
            self._webhook_queue.put_nowait(entry.update)
        self._s.queue.clear()
