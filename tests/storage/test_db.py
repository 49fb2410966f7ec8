"""Database: engine options per backend, transactions, and URLs that never leak passwords."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from storage.db import Database, normalise_url
from storage.models import User


def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")  # missing folder is created
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    finally:
        db.dispose()


def test_in_memory_sqlite_is_shared_between_sessions() -> None:
    db = Database("sqlite://")
    try:
        db.migrate()
        with db.session() as s:
            s.add(User(platform="web", platform_user_id="a"))
        with db.session() as s:
            assert s.scalar(select(func.count(User.id))) == 1
    finally:
        db.dispose()


def test_session_commits_and_rolls_back(database: Database) -> None:
    with database.session() as s:
        s.add(User(platform="web", platform_user_id="kept"))
    with pytest.raises(RuntimeError):
        with database.session() as s:
            s.add(User(platform="web", platform_user_id="dropped"))
            s.flush()
            raise RuntimeError("boom")
    with database.session() as s:
        names = set(s.scalars(select(User.platform_user_id)))
    assert names == {"kept"}


def test_foreign_keys_enforced(database: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    from storage.models import Conversation

    with pytest.raises(IntegrityError):
        with database.session() as s:
            s.add(Conversation(platform="web", chat_id="c", user_id=999_999))


def test_urls_are_normalised() -> None:
    assert normalise_url("postgresql://u:pw@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u:pw@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"


def test_password_never_logged(postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A real server with a real password: migrate and repr mention the URL, masked."""
    import psycopg

    # The throwaway server trusts local logins, but the password still travels in the URL.
    secret = "Pw-1f9a%4Xq"  # '%' also proves configparser never sees the URL
    suffix = os.urandom(4).hex()
    role, dbname = f"sb_pw_user_{suffix}", f"sb_pw_test_{suffix}"
    admin = normalise_url(postgres_url)
    with psycopg.connect(host=admin.host, port=admin.port, user=admin.username,
                         password=admin.password, dbname=admin.database,
                         autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        conn.execute(f"CREATE DATABASE {dbname} OWNER {role}")
    url = admin.set(username=role, password=secret, database=dbname)
    db = Database(url.render_as_string(hide_password=False))
    try:
        with caplog.at_level(logging.DEBUG):
            db.migrate()
            logging.getLogger("test").info("db is %s / %s / %s", db, db.engine, db.safe_url)
        assert role in caplog.text  # the URL was logged...
        assert secret not in caplog.text  # ...without its password
        assert secret not in repr(db) and secret not in str(db.engine)
    finally:
        db.dispose()
        with psycopg.connect(host=admin.host, port=admin.port, user=admin.username,
                             password=admin.password, dbname=admin.database,
                             autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")
