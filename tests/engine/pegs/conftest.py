"""Every PEGS test module runs on one torch thread (see pegs_support.one_thread)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.pegs.pegs_support import one_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from one_thread()
