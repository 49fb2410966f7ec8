"""What a chat adapter remembers in the database: claimed messages, their outgoing
answers until sent, and the platform's handle of every library sticker uploaded once.

Shared by the Telegram and Discord adapters; rows carry the platform's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update

from storage.db import Database
from storage.models import Delivery, PlatformSticker, utcnow
from storage.queries import ensure_user, insert_ignore


@dataclass
class DeliveryPolicy:
    """How hard to try: inline retries per part, then the background resend loop."""

    attempts: int = 3
    backoff_s: float = 1.0
    resend_interval_s: float = 30.0
    # A claimed message still unanswered after this long is answered by the resend loop.
    stale_after_s: float = 120.0
    max_resend_delay_s: float = 600.0
    give_up_after_s: float = 24 * 3600.0

    def resend_delay(self, attempts: int) -> float:
        return min(self.max_resend_delay_s, self.resend_interval_s * 2 ** attempts)


@dataclass
class DeliveryRow:
    task_id: str
    chat_id: str
    state: str
    turn: dict[str, Any] | None
    payload: dict[str, Any] | None
    parts_sent: int
    attempts: int
    created_at: datetime


class Ledger:
    def __init__(self, db: Database, platform: str) -> None:
        self.db = db
        self.platform = platform

    # --- claiming incoming messages ---------------------------------------------
    def seen(self, task_id: str) -> bool:
        with self.db.session() as s:
            return s.execute(select(Delivery.id).where(Delivery.task_id == task_id)
                             ).first() is not None

    def claim(self, task_id: str, chat_id: str, user_id: str,
              user_name: str | None = None) -> bool:
        """Record a message as ours to answer; False when it was claimed before."""
        with self.db.session() as s:
            uid = ensure_user(s, self.platform, user_id, user_name)
            now = utcnow()
            row = {"task_id": task_id, "platform": self.platform, "chat_id": chat_id,
                   "user_id": uid, "state": "received", "turn": None, "payload": None,
                   "parts_sent": 0, "attempts": 0, "last_error": None,
                   "next_attempt_at": None, "created_at": now, "updated_at": now}
            return insert_ignore(s, Delivery.__table__, row, ["task_id"]) is not None  # type: ignore[arg-type]

    def set_turn(self, task_id: str, turn: dict[str, Any]) -> None:
        self._update(task_id, turn=turn)

    def set_payload(self, task_id: str, payload: dict[str, Any]) -> None:
        """The answer is known: from now on it is sent (or resent) until done."""
        self._update(task_id, payload=payload, state="pending", next_attempt_at=utcnow())

    # --- sending progress -----------------------------------------------------
    def get(self, task_id: str) -> DeliveryRow | None:
        with self.db.session() as s:
            row = s.execute(select(Delivery).where(Delivery.task_id == task_id)).scalar()
            return _row(row) if row else None

    def part_sent(self, task_id: str, parts_sent: int) -> None:
        self._update(task_id, parts_sent=parts_sent)

    def finish(self, task_id: str, state: str, error: str | None = None) -> None:
        self._update(task_id, state=state, last_error=_short(error), next_attempt_at=None)

    def postpone(self, task_id: str, error: str, delay_s: float) -> int:
        """Count a failed attempt and set when to try again; returns the attempts so far."""
        with self.db.session() as s:
            row = s.execute(select(Delivery).where(Delivery.task_id == task_id)).scalar()
            if row is None:
                return 0
            row.attempts += 1
            row.last_error = _short(error)
            row.next_attempt_at = utcnow() + timedelta(seconds=delay_s)
            row.updated_at = utcnow()
            return row.attempts

    def due(self, stale_after_s: float, limit: int = 50,
            any_pending: bool = False) -> list[DeliveryRow]:
        """Answers waiting to be (re)sent (all of them with `any_pending`, as at start-up),
        and claimed messages left unanswered for `stale_after_s` (the process stopped,
        or the reply failed)."""
        now = utcnow()
        pending_due = Delivery.state == "pending"
        if not any_pending:
            pending_due = pending_due & (Delivery.next_attempt_at <= now)
        with self.db.session() as s:
            rows = s.execute(
                select(Delivery).where(Delivery.platform == self.platform, or_(
                    pending_due,
                    (Delivery.state == "received")
                    & (Delivery.updated_at <= now - timedelta(seconds=stale_after_s))
                    & or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                )).order_by(Delivery.id).limit(limit)
            ).scalars().all()
            return [_row(r) for r in rows]

    def _update(self, task_id: str, **values: Any) -> None:
        values["updated_at"] = utcnow()
        with self.db.session() as s:
            s.execute(update(Delivery).where(Delivery.task_id == task_id).values(**values))

    # --- sticker file_id cache -----------------------------------------------
    def sticker_file_id(self, sticker_id: str) -> str | None:
        with self.db.session() as s:
            return s.execute(
                select(PlatformSticker.file_id).where(PlatformSticker.platform == self.platform,
                                                      PlatformSticker.sticker_id == sticker_id)
            ).scalar_one_or_none()

    def remember_sticker(self, sticker_id: str, file_id: str) -> None:
        with self.db.session() as s:
            s.execute(delete(PlatformSticker).where(PlatformSticker.platform == self.platform,
                                                    PlatformSticker.sticker_id == sticker_id))
            s.add(PlatformSticker(platform=self.platform, sticker_id=sticker_id,
                                  file_id=file_id, created_at=utcnow()))

    def forget_sticker(self, sticker_id: str) -> None:
        """The platform refused the handle (another bot token, expired): upload again."""
        with self.db.session() as s:
            s.execute(delete(PlatformSticker).where(PlatformSticker.platform == self.platform,
                                                    PlatformSticker.sticker_id == sticker_id))


def _short(error: str | None) -> str | None:
    return error[:250] if error else None


def _row(row: Delivery) -> DeliveryRow:
    return DeliveryRow(task_id=row.task_id, chat_id=row.chat_id, state=row.state,
                       turn=row.turn, payload=row.payload, parts_sent=row.parts_sent,
                       attempts=row.attempts, created_at=row.created_at)
