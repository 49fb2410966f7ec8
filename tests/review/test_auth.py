"""Operators' passwords, sessions, CSRF and login rate limiting (review/auth.py and the
login routes)."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from review import auth
from review.web import SESSION_COOKIE
from storage.models import Operator, OperatorSession, User, utcnow
from tests.review.conftest import PASSWORD, log_in, login_csrf, page_csrf


def test_passwords_are_stored_as_argon2id_hashes(sqlite_database) -> None:
    auth.add_operator(sqlite_database, "ann", "s3cret-enough")
    with sqlite_database.session() as s:
        stored = s.execute(select(Operator.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "s3cret-enough" not in stored
    assert auth.check_login(sqlite_database, "ann", "s3cret-enough") is not None
    assert auth.check_login(sqlite_database, "ann", "s3cret-enougH") is None
    assert auth.check_login(sqlite_database, "nobody", "s3cret-enough") is None
    with pytest.raises(auth.OperatorError, match="exists"):
        auth.add_operator(sqlite_database, "ann", "another-password")
    with pytest.raises(auth.OperatorError, match="at least 8"):
        auth.add_operator(sqlite_database, "ben", "short")
    with pytest.raises(auth.OperatorError, match="username"):
        auth.add_operator(sqlite_database, "<ann>", "long enough password")


def test_replacing_a_password_ends_the_old_sessions(sqlite_database) -> None:
    operator_id = auth.add_operator(sqlite_database, "ann", "first-password")
    token, _ = auth.start_session(sqlite_database, operator_id, hours=1)
    auth.add_operator(sqlite_database, "ann", "second-password", replace=True)
    assert auth.find_session(sqlite_database, token) is None
    assert auth.check_login(sqlite_database, "ann", "second-password") == operator_id


def test_sessions_store_only_the_token_hash_and_expire(sqlite_database) -> None:
    operator_id = auth.add_operator(sqlite_database, "ann", "s3cret-enough")
    token, session = auth.start_session(sqlite_database, operator_id, hours=1)
    with sqlite_database.session() as s:
        row = s.execute(select(OperatorSession)).scalar_one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
    assert auth.find_session(sqlite_database, token).username == "ann"
    assert auth.find_session(sqlite_database, token + "x") is None
    with sqlite_database.session() as s:
        s.execute(update(OperatorSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert auth.find_session(sqlite_database, token) is None
    with sqlite_database.session() as s:  # an expired session is deleted when seen
        assert s.execute(select(OperatorSession)).first() is None
    assert auth.csrf_ok(session, session.csrf_token)
    assert not auth.csrf_ok(session, session.csrf_token[:-1] + "?")
    assert not auth.csrf_ok(session, None)


def test_limiter_counts_failures_per_name_and_address_in_a_window() -> None:
    now = [1000.0]
    limiter = auth.LoginLimiter(max_failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("ann", "10.0.0.1") == 0
        limiter.failed("ann", "10.0.0.1")
    assert limiter.retry_after("ann", "10.0.0.2") == pytest.approx(60)  # the name is locked
    assert limiter.retry_after("ben", "10.0.0.1") == pytest.approx(60)  # so is the address
    assert limiter.retry_after("ben", "10.0.0.2") == 0
    now[0] += 30
    assert limiter.retry_after("ann", "10.0.0.2") == pytest.approx(30)
    now[0] += 31
    assert limiter.retry_after("ann", "10.0.0.1") == 0
    limiter.failed("ann", "10.0.0.9")
    limiter.succeeded("ann")
    assert limiter._failures.get("user:ann") is None and limiter._failures["ip:10.0.0.9"]


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(dashboard) -> None:
    client = dashboard.client
    response = log_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/review/"
    cookie = next(h for h in response.headers.get_list("set-cookie")
                  if h.startswith(SESSION_COOKIE + "="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/review" in cookie.lower()
    assert "secure" not in attributes  # not behind HTTPS in this test (setting off)
    assert client.get("/review/", follow_redirects=False).status_code == 200
    csrf = page_csrf(client)
    out = client.post("/review/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/review/login"
    with dashboard.db.session() as s:
        assert s.execute(select(OperatorSession)).first() is None
    assert client.get("/review/", follow_redirects=False).status_code == 303


def test_secure_cookie_setting_marks_the_cookie_secure(dashboard) -> None:
    from starlette.testclient import TestClient

    dashboard.app.state.review.settings = dashboard.settings.model_copy(
        update={"review_secure_cookies": True})
    client = TestClient(dashboard.client.app, base_url="https://testserver")
    response = log_in(client)
    assert response.status_code == 303
    cookie = next(h for h in response.headers.get_list("set-cookie")
                  if h.startswith(SESSION_COOKIE + "="))
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_login_needs_the_forms_csrf_token(dashboard) -> None:
    client = dashboard.client
    login_csrf(client)  # the login cookie is set, but the form's token is missing
    response = client.post("/review/login", data={"username": "olivia", "password": PASSWORD,
                                                  "csrf_token": "forged"},
                           follow_redirects=False)
    assert response.status_code == 403 and SESSION_COOKIE not in response.cookies


def test_posts_without_the_sessions_csrf_token_are_refused(dashboard) -> None:
    client = dashboard.client
    log_in(client)
    user = dashboard.seeded.alice_user_id
    for data, headers in (({}, {}), ({"csrf_token": "wrong"}, {}),
                          ({}, {"x-csrf-token": "wrong"})):
        response = client.post(f"/review/users/{user}/delete",
                               data={"confirm": "alice", **data}, headers=headers,
                               follow_redirects=False)
        assert response.status_code == 403, data
    with dashboard.db.session() as s:
        assert s.get(User, user) is not None
    marked = client.post(f"/review/api/messages/{dashboard.seeded.alice_bot}/marks",
                         json={"kind": "good"}, headers={"x-csrf-token": "wrong"})
    assert marked.status_code == 403
    csrf = page_csrf(client)
    marked = client.post(f"/review/api/messages/{dashboard.seeded.alice_bot}/marks",
                         json={"kind": "good"}, headers={"x-csrf-token": csrf})
    assert marked.status_code == 200 and marked.json()["ok"]


def test_failed_logins_lock_out_with_a_clear_message(dashboard, caplog) -> None:
    client = dashboard.client
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        response = log_in(client, password="wrong password")
        assert response.status_code == 401 and "Wrong username or password" in response.text
    locked = log_in(client)  # the right password, too late
    assert locked.status_code == 429
    assert "Too many failed logins. Try again in 15 minutes." in locked.text
    assert SESSION_COOKIE not in locked.cookies
    assert PASSWORD not in caplog.text and "wrong password" not in caplog.text
