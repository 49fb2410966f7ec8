"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, inspect, text

from storage.db import Database
from storage.models import Base
from tests.harness.services import PgDatabases

TABLES = {"users", "conversations", "messages", "stickers", "platform_stickers", "deliveries",
          "enabled_channels", "evaluation_scores", "operators", "operator_sessions",
          "review_marks", "jobs", "alembic_version"}
HEAD = "0006"


def _diff(db: Database, metadata: MetaData = Base.metadata) -> list:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)


def test_migrated_schema_equals_models(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        assert set(inspect(db.engine).get_table_names()) == set()
        db.migrate()
        assert set(inspect(db.engine).get_table_names()) == TABLES
        assert _diff(db) == []
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
    finally:
        db.dispose()


def test_compare_notices_drift(database: Database) -> None:
    """The comparison above can fail: a model change without a migration shows up."""
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["users"].append_column(Column("nickname", String(40)))
    diffs = _diff(database, drifted)
    assert any(d[0] == "add_column" and d[3].name == "nickname" for d in diffs), diffs


def test_migrate_twice_and_downgrade(database: Database) -> None:
    database.migrate()  # already at head: a no-op, not an error
    assert _diff(database) == []
    database.downgrade("base")
    assert set(inspect(database.engine).get_table_names()) == {"alembic_version"}
    database.migrate()
    assert _diff(database) == []


def test_concurrent_migrate_on_postgres(pg_databases: PgDatabases) -> None:
    """Two workers starting at once: the advisory lock lets exactly one create the tables."""
    name, url = pg_databases.create()
    dbs = [Database(url), Database(url)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(db: Database) -> None:
        try:
            barrier.wait()
            db.migrate()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert _diff(dbs[0]) == []
    finally:
        for db in dbs:
            db.dispose()
        pg_databases.drop(name)
