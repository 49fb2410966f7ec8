"""Operators, their logins and sessions, CSRF tokens and login rate limiting.

Passwords are stored only as argon2id hashes. A session cookie carries a random token;
the database keeps its SHA-256, so a copy of the database logs nobody in. Every session
has its own CSRF token, which every POST must echo (a hidden form field, or the
X-CSRF-Token header for JSON calls). Failed logins are counted per username and per
client address in this process: after `max_failures` within `window_s` that name or
address is refused until the oldest failure ages out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select

from storage.db import Database
from storage.models import Operator, OperatorSession, utcnow

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_CHARS = 8

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class OperatorError(ValueError):
    """A username or password that cannot be used, with words for the person."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def add_operator(db: Database, username: str, password: str, *, replace: bool = False) -> int:
    """Create an operator (or, with replace, set a new password); returns its id."""
    if not USERNAME.match(username):
        raise OperatorError("A username is 1-64 letters, digits or _.@-")
    if len(password) < MIN_PASSWORD_CHARS:
        raise OperatorError(f"A password needs at least {MIN_PASSWORD_CHARS} characters.")
    with db.session() as s:
        operator = s.execute(select(Operator).where(Operator.username == username)
                             ).scalar_one_or_none()
        if operator is not None and not replace:
            raise OperatorError(f"Operator {username!r} exists already (use --replace to set "
                                "a new password).")
        if operator is None:
            operator = Operator(username=username, password_hash=hash_password(password))
            s.add(operator)
        else:
            operator.password_hash = hash_password(password)
            # A new password ends every session of the old one.
            s.execute(delete(OperatorSession).where(OperatorSession.operator_id == operator.id))
        s.flush()
        return operator.id


def check_login(db: Database, username: str, password: str) -> int | None:
    """The operator's id when the password is right, else None (same cost either way)."""
    with db.session() as s:
        operator = s.execute(select(Operator).where(Operator.username == username)
                             ).scalar_one_or_none()
        if operator is None:
            verify_password(_DUMMY_HASH, password)
            return None
        if not verify_password(operator.password_hash, password):
            return None
        if _hasher.check_needs_rehash(operator.password_hash):
            operator.password_hash = hash_password(password)
        operator.last_login_at = utcnow()
        return operator.id


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    """Who is logged in with a cookie, and the CSRF token their forms must carry."""

    session_id: int
    operator_id: int
    username: str
    csrf_token: str
    expires_at: datetime


def start_session(db: Database, operator_id: int, hours: float) -> tuple[str, SessionInfo]:
    """A new session; returns the cookie's token (never stored) and the session."""
    token = secrets.token_urlsafe(32)
    with db.session() as s:
        now = utcnow()
        # Expired sessions are swept here, so the table does not grow without bound.
        s.execute(delete(OperatorSession).where(OperatorSession.expires_at < now))
        row = OperatorSession(operator_id=operator_id, token_hash=token_hash(token),
                              csrf_token=secrets.token_urlsafe(32),
                              expires_at=now + timedelta(hours=hours))
        s.add(row)
        s.flush()
        username = s.get(Operator, operator_id).username  # type: ignore[union-attr]
        return token, SessionInfo(row.id, operator_id, username, row.csrf_token,
                                  row.expires_at)


def find_session(db: Database, token: str | None) -> SessionInfo | None:
    """The live session of a cookie token; None when unknown or expired."""
    if not token or len(token) > 128:
        return None
    with db.session() as s:
        row = s.execute(
            select(OperatorSession, Operator.username)
            .join(Operator, Operator.id == OperatorSession.operator_id)
            .where(OperatorSession.token_hash == token_hash(token))).first()
        if row is None:
            return None
        session, username = row
        if session.expires_at <= utcnow():
            s.delete(session)
            return None
        return SessionInfo(session.id, session.operator_id, username, session.csrf_token,
                           session.expires_at)


def end_session(db: Database, token: str | None) -> None:
    if token:
        with db.session() as s:
            s.execute(delete(OperatorSession).where(
                OperatorSession.token_hash == token_hash(token)))


def csrf_ok(session: SessionInfo, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf_token.encode(),
                                               str(given).encode())


class LoginLimiter:
    """Failed logins per key ("user:<name>", "ip:<address>") in a sliding window."""

    def __init__(self, max_failures: int = 5, window_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(username: str, address: str) -> list[str]:
        return [f"user:{username.lower()}", f"ip:{address}"]

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until a login may be tried again; 0 when it may be tried now."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in self.keys(username, address):
                failures = self._recent(key, now)
                if len(failures) >= self.max_failures:
                    wait = max(wait, failures[-self.max_failures] + self.window_s - now)
        return wait

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key in self.keys(username, address):
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str) -> None:
        """The name's failures are cleared; the address's stay (one attacker may own an
        account and would otherwise reset its address's count with it)."""
        with self._lock:
            self._failures.pop(self.keys(username, "")[0], None)
