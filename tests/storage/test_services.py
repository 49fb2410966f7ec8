"""The throwaway services answer, and a missing binary is reported by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy import text

from storage.db import Database, normalise_url
from tests.harness.services import ServiceError, _wait_until, find_binary


def test_postgres_answers(postgres_url: str) -> None:
    u = normalise_url(postgres_url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                         dbname=u.database) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    assert version.split(".")[0].isdigit()


def test_redis_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
        client.set("sb:test", "1", ex=5)
        assert client.get("sb:test") == b"1"
    finally:
        client.close()


def test_missing_binary_is_named() -> None:
    with pytest.raises(ServiceError, match="no-such-server-binary"):
        find_binary("no-such-server-binary")


def test_server_dying_at_start_is_reported(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; print('FATAL: bad config'); sys.exit(3)"],
            stdout=log, stderr=subprocess.STDOUT)

    def never_answers() -> None:
        raise ConnectionError("refused")

    with pytest.raises(ServiceError, match=r"(?s)exited with code 3.*FATAL: bad config"):
        _wait_until("fake-server", proc, log_path, never_answers, timeout=10)


def test_sqlite_database_fixture_is_migrated(sqlite_database: Database) -> None:
    with sqlite_database.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"
