"""Alembic environment for StickerBot.

`storage.db.Database.migrate()` hands over an open connection in
`config.attributes["connection"]`. Operators running the alembic CLI
(`alembic -c storage/alembic.ini upgrade head`) get the URL from the settings
(DATABASE_URL / STICKERBOT_DATABASE_URL, else the embedded SQLite file).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations rewrite tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_from_cli() -> None:
    import logging.config

    from storage.db import Database
    from storage.settings import StorageSettings

    if config.config_file_name is not None:
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = config.get_main_option("sqlalchemy.url") or StorageSettings().resolved_database_url
    db = Database(url)
    try:
        with db.engine.begin() as connection:
            _run(connection)
    finally:
        db.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")

_given = config.attributes.get("connection")
if _given is not None:
    _run(_given)
else:
    _run_from_cli()
