"""The metrics page's numbers on both backends (days are grouped differently in SQL),
and the SVG charts' escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from review.charts import bar_chart, line_chart
from review.metrics import dashboard_metrics, window
from storage.media_store import MediaStore
from tests.review.conftest import seed


def test_metrics_group_by_day_on_each_backend(database, review_library, tmp_path) -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    seed(database, review_library, MediaStore(tmp_path / "media"), now=now)
    with database.session() as s:
        m = dashboard_metrics(s, *window(30, until=now + timedelta(hours=1)))
    assert m["volume"] == {"discord": {"2026-11-20": 1}, "telegram": {"2026-11-19": 1},
                           "web": {"2026-11-18": 2}}
    assert m["latency_daily"]["2026-11-18"]["p50"] == pytest.approx(850.0)
    assert m["sticker_frequency"]["daily"] == {"2026-11-18": 0.5, "2026-11-19": 1.0,
                                               "2026-11-20": 0.0}
    assert m["judge"]["daily"]["judge.emp_mm"] == {"2026-11-18": pytest.approx(3.8)}
    with database.session() as s:  # a window with nothing in it
        empty = dashboard_metrics(s, *window(1, until=now - timedelta(days=10)))
    assert empty["volume"] == {} and empty["latency"]["p50"] is None
    assert empty["sticker_frequency"]["share"] is None


def test_chart_labels_are_escaped() -> None:
    svg = line_chart("<t>", {"<script>x</script>": {"2026-01-01": 1.0, "2026-01-02": 2.0}})
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<polyline" in svg
    bars = bar_chart("e", ["a&b"], {"users": {"a&b": 3}})
    assert "a&amp;b" in bars and "<rect" in bars
    assert "no data" in line_chart("empty", {})
