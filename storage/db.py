"""The database handle: one SQLAlchemy engine, sessions, and Alembic migrations.

SQLite (the embedded default) and PostgreSQL are both first-class. The URL is only ever
shown with its password masked (`Database.safe_url`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant will do: it only serialises concurrent `migrate()` calls on one server.
_MIGRATE_LOCK_ID = 0x5715_C3E6


def normalise_url(url: str | URL) -> URL:
    """Parse a URL; bare postgres URLs get the psycopg 3 driver (psycopg2 is not installed)."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        # WAL lets readers (review, memory) run while a worker writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class Database:
    """One engine per process; `session()` scopes a transaction."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.dialect = self.url.get_backend_name()
        self.engine: Engine = self._create_engine(echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _create_engine(self, echo: bool) -> Engine:
        if self.dialect == "sqlite":
            database = self.url.database
            kwargs: dict[str, Any] = {
                "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                 "check_same_thread": False},
            }
            if not database or database == ":memory:":
                # One shared connection, or each session would see its own empty database.
                kwargs["poolclass"] = StaticPool
            else:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, echo=echo, **kwargs)
            event.listen(engine, "connect", _sqlite_on_connect)
            return engine
        return create_engine(self.url, echo=echo, pool_pre_ping=True)

    @property
    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def alembic_config(self) -> Config:
        """An Alembic Config built in code: no alembic.ini needed at run time."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        # The URL is deliberately not put into the config: configparser would choke on
        # '%' in passwords, and the connection is handed over directly instead.
        return cfg

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to `revision` (Alembic upgrade), in one transaction."""
        log.info("migrating %s to %s", self.safe_url, revision)
        cfg = self.alembic_config()
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Two workers starting together must not both create the tables.
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATE_LOCK_ID})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def downgrade(self, revision: str) -> None:
        cfg = self.alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)

    def dispose(self) -> None:
        self.engine.dispose()
