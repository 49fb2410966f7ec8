"""`make check` leaves out the tests that need PostgreSQL/Redis or a real model, judged
by the fixtures each test asks for (tests/conftest.py), with no mark written by hand."""

from __future__ import annotations

import subprocess
import sys

from tests.serve_process import REPO

FAST = "not services and not slow"


def collected(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return {line.split("::", 1)[1] for line in result.stdout.splitlines() if "::" in line}


def test_fast_selection_follows_the_fixtures() -> None:
    files = ["tests/storage/test_services.py", "tests/storage/test_reachability.py",
             "tests/engine/stickers/test_pack.py"]
    everything, fast = collected(*files), collected("-m", FAST, *files)
    assert {"test_postgres_answers", "test_redis_answers",  # postgres_url, redis_url
            "test_user_active_flag[postgresql]",  # the PostgreSQL run of `database`
            "test_pack_is_large_and_covers_every_emotion",  # the default pack (`library`)
            "test_every_pack_emoji_has_a_twemoji_svg",  # `twemoji_dir`
            } <= everything - fast
    assert {"test_missing_binary_is_named", "test_sqlite_database_fixture_is_migrated",
            "test_user_active_flag[sqlite]", "test_pack_metadata_is_complete"} <= fast
