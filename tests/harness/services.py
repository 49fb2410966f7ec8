"""Throwaway PostgreSQL and Redis servers for the tests: real processes, loud failures.

Each server runs from a temporary directory on 127.0.0.1 and a free port, with durability
switched off for speed, and is stopped when the test session (or the interpreter) ends.
A missing binary or a server that does not come up raises ServiceError naming what is
wrong; the fixtures turn that into a test failure, never a skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PG_BIN_DIRS = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
START_TIMEOUT_S = 30.0


class ServiceError(RuntimeError):
    """A test service could not be started; the message says what is missing."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str, extra_dirs: list[Path] | None = None) -> str:
    env_dir = os.environ.get("STICKERBOT_PG_BIN")
    for d in ([Path(env_dir)] if env_dir else []) + (extra_dirs or []):
        candidate = d / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        searched = ", ".join(str(d) for d in (extra_dirs or []))
        where = f"{searched} and PATH" if searched else "PATH"
        raise ServiceError(f"`{name}` not found (searched {where}); "
                           f"install it (e.g. apt-get install postgresql redis-server)")
    return found


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    started_in_s: float
    stop_signal: int = signal.SIGTERM
    watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # Start the server process again on the same port and data (for fault tests).
    launch: Callable[[], subprocess.Popen[bytes]] | None = field(default=None, repr=False)
    probe: Callable[[], None] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._halt()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _halt(self) -> None:
        if self.watchdog is not None:
            # First, so it can never signal a pid that gets reused after the server exits.
            self.watchdog.kill()
            self.watchdog.wait(timeout=5)
            self.watchdog = None
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def pause(self) -> None:
        """Stop the server (its clients see connections refused); files are kept."""
        self._halt()

    def resume(self) -> None:
        """Start it again on the same port and wait until it answers."""
        assert self.launch is not None and self.probe is not None, f"{self.name}: no launcher"
        self.process = self.launch()
        _wait_until(self.name, self.process, self.log_path, self.probe)
        self.watchdog = _watchdog(self)


def _watchdog(service: Service) -> subprocess.Popen[bytes]:
    """Stop the server and remove its files if this test process dies without cleaning up
    (SIGKILL, a timeout): a forgotten postgres would hold memory on a shared machine."""
    script = ('while kill -0 "$1" 2>/dev/null; do sleep 2; done; '
              'kill -"$3" "$2" 2>/dev/null; '
              'for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$2" 2>/dev/null || break; sleep 1; done; '
              'kill -0 "$2" 2>/dev/null && kill -9 "$2"; rm -rf "$4"')
    args = [str(os.getpid()), str(service.process.pid), str(int(service.stop_signal)),
            str(service.workdir)]
    return subprocess.Popen(["/bin/sh", "-c", script, "watchdog", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_until(service_name: str, proc: subprocess.Popen[bytes], log_path: Path,
                probe: Callable[[], None], timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{service_name} exited with code {proc.returncode} while "
                               f"starting; its log:\n{_tail(log_path)}")
        try:
            probe()
            return
        except Exception as exc:  # the server is not answering yet
            last_error = exc
            time.sleep(0.1)
    proc.kill()
    raise ServiceError(f"{service_name} did not answer within {timeout:.0f} s "
                       f"(last error: {last_error}); its log:\n{_tail(log_path)}")


def _run_as_postgres() -> dict[str, Any]:
    """initdb and postgres refuse to run as root: drop to the `postgres` system user."""
    if os.geteuid() != 0:
        return {}
    try:
        import pwd

        pw = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceError("running as root but there is no `postgres` system user to run "
                           "PostgreSQL as (install the postgresql package)") from exc
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def start_postgres() -> Service:
    """initdb into a temp dir and start postgres on 127.0.0.1:<free port>."""
    t0 = time.monotonic()
    initdb = find_binary("initdb", PG_BIN_DIRS)
    postgres = find_binary("postgres", PG_BIN_DIRS)
    as_user = _run_as_postgres()
    workdir = Path(tempfile.mkdtemp(prefix="stickerbot-pg-"))
    data_dir, socket_dir, log_path = workdir / "data", workdir / "sock", workdir / "postgres.log"
    socket_dir.mkdir()
    if as_user:
        for p in (workdir, socket_dir):
            os.chown(p, as_user["user"], as_user["group"])
    init = subprocess.run(
        [initdb, "-D", str(data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
         "--locale=C", "--no-sync"],
        capture_output=True, text=True, cwd=workdir, **as_user)
    if init.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServiceError(f"initdb failed ({init.returncode}): {init.stderr.strip()[-2000:]}")
    port = free_port()

    def launch() -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log_file:
            if as_user:
                os.chown(log_path, as_user["user"], as_user["group"])
            return subprocess.Popen(
                [postgres, "-D", str(data_dir), "-p", str(port), "-k", str(socket_dir),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=200", "-c", "shared_buffers=32MB"],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir,
                start_new_session=True, **as_user)

    proc = launch()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def probe() -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             connect_timeout=2) as conn:
            conn.execute("SELECT 1")

    try:
        _wait_until("postgres", proc, log_path, probe)
    except ServiceError:
        proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
    service = Service("postgres", url, proc, workdir, log_path, time.monotonic() - t0,
                      stop_signal=signal.SIGINT, launch=launch, probe=probe)
    atexit.register(service.stop)
    service.watchdog = _watchdog(service)
    return service


def start_redis() -> Service:
    """redis-server on 127.0.0.1:<free port>, no RDB or AOF persistence."""
    t0 = time.monotonic()
    binary = find_binary("redis-server")
    workdir = Path(tempfile.mkdtemp(prefix="stickerbot-redis-"))
    log_path = workdir / "redis.log"
    port = free_port()

    def launch() -> subprocess.Popen[bytes]:
        # No persistence: a restart comes back empty, the worst case for the bot.
        with open(log_path, "ab") as log_file:
            return subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
                 "--save", "", "--appendonly", "no", "--dir", str(workdir),
                 "--daemonize", "no"],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir,
                start_new_session=True)

    proc = launch()
    url = f"redis://127.0.0.1:{port}/0"

    def probe() -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        try:
            if not client.ping():
                raise ConnectionError("no PONG")
        finally:
            client.close()

    try:
        _wait_until("redis-server", proc, log_path, probe)
    except ServiceError:
        proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    service = Service("redis", url, proc, workdir, log_path, time.monotonic() - t0,
                      launch=launch, probe=probe)
    atexit.register(service.stop)
    service.watchdog = _watchdog(service)
    return service


class PgDatabases:
    """Creates and drops scratch databases on a PostgreSQL server (fast with templates)."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy import make_url

        url = make_url(admin_url)
        if url.drivername in ("postgres", "postgresql"):
            url = url.set(drivername="postgresql+psycopg")
        self.url = url

    def _admin(self) -> Any:
        return self._admin_to(self.url.database or "postgres")

    def url_for(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def create(self, prefix: str = "sb_test", template: str | None = None) -> tuple[str, str]:
        """A new empty (or template-copied) database: returns (name, url)."""
        from psycopg import sql

        name = f"{prefix}_{os.getpid()}_{os.urandom(4).hex()}"
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template))
        with self._admin() as conn:
            conn.execute(stmt)
        return name, self.url_for(name)

    def drop(self, name: str) -> None:
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    def create_schema(self, database: str, prefix: str = "t") -> tuple[str, str]:
        """A new empty schema in `database`; the URL pins search_path to it.

        CREATE DATABASE copies the catalogs (~0.5 s on a busy 2-core machine); a schema
        takes milliseconds, so each test can still start from a truly empty one.
        """
        from psycopg import sql

        schema = f"{prefix}_{os.urandom(6).hex()}"
        with self._admin_to(database) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        url = self.url.set(database=database).update_query_dict(
            {"options": f"-csearch_path={schema}"})
        return schema, url.render_as_string(hide_password=False)

    def drop_schema(self, database: str, schema: str) -> None:
        from psycopg import sql

        with self._admin_to(database) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)))

    def _admin_to(self, database: str) -> Any:
        import psycopg

        u = self.url
        return psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432,
                               user=u.username, password=u.password, dbname=database,
                               autocommit=True, connect_timeout=10)


def check_postgres(url: str) -> None:
    """Raise ServiceError (password masked) unless the server at `url` answers."""
    from sqlalchemy import make_url

    u = make_url(url)
    try:
        import psycopg

        with psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432,
                             user=u.username, password=u.password,
                             dbname=u.database or "postgres", connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        raise ServiceError(f"PostgreSQL at {u.render_as_string(hide_password=True)} does not "
                           f"answer: {type(exc).__name__}") from None


def check_redis(url: str) -> None:
    import redis
    from sqlalchemy import make_url

    safe = make_url(url).render_as_string(hide_password=True)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        raise ServiceError(f"Redis at {safe} does not answer: {type(exc).__name__}") from None
