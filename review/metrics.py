"""The numbers behind the metrics page, over a date window (default: the last 30 days).

Counting and grouping happen in SQL; latency percentiles are taken in Python from the
window's reply latencies (one integer column, cheap even for 100k replies), which keeps
the queries the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

from storage.models import Conversation, EvaluationScore, Message

EMOTIONS = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
PERCENTILES = (50, 90, 99)


def _day(s: Session, column: Any) -> Any:
    # SQLite's CAST(... AS DATE) gives a number; date() gives the ISO day.
    return func.date(column) if s.get_bind().dialect.name == "sqlite" else cast(column, Date)


def _day_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def window(days: int = 30, until: datetime | None = None) -> tuple[datetime, datetime]:
    end = until or datetime.now(UTC)
    return end - timedelta(days=days), end


def dashboard_metrics(s: Session, since: datetime, until: datetime) -> dict[str, Any]:
    """Everything the metrics page shows, as plain JSON-able data."""
    in_window = (Message.created_at >= since, Message.created_at < until)
    day = _day(s, Message.created_at)

    volume: dict[str, dict[str, int]] = defaultdict(dict)
    for d, platform, n in s.execute(
            select(day, Conversation.platform, func.count(Message.id))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(*in_window, Message.role == "user").group_by(day, Conversation.platform)):
        volume[platform][_day_text(d)] = n

    latencies = np.array(list(s.execute(select(Message.latency_ms).where(
        *in_window, Message.role == "bot", Message.latency_ms.is_not(None))).scalars()),
        dtype=float)
    latency = {f"p{p}": (float(np.percentile(latencies, p)) if latencies.size else None)
               for p in PERCENTILES}
    latency["n"] = int(latencies.size)
    latency_daily: dict[str, dict[str, float]] = {}
    by_day: dict[str, list[int]] = defaultdict(list)
    for d, ms in s.execute(select(day, Message.latency_ms).where(
            *in_window, Message.role == "bot", Message.latency_ms.is_not(None))):
        by_day[_day_text(d)].append(ms)
    for d, values in sorted(by_day.items()):
        latency_daily[d] = {f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES}

    sticker_daily: dict[str, float] = {}
    replies = with_sticker = 0
    for d, n, stickers in s.execute(
            select(day, func.count(Message.id), func.count(Message.sticker_id))
            .where(*in_window, Message.role == "bot").group_by(day).order_by(day)):
        sticker_daily[_day_text(d)] = stickers / n if n else 0.0
        replies, with_sticker = replies + n, with_sticker + stickers
    top_stickers = [{"sticker_id": sid, "count": n} for sid, n in s.execute(
        select(Message.sticker_id, func.count(Message.id))
        .where(*in_window, Message.role == "bot", Message.sticker_id.is_not(None))
        .group_by(Message.sticker_id).order_by(func.count(Message.id).desc(),
                                               Message.sticker_id).limit(10))]

    emotions = {"user": dict.fromkeys(EMOTIONS, 0), "bot": dict.fromkeys(EMOTIONS, 0)}
    for emotion, n in s.execute(select(Message.user_emotion, func.count(Message.id)).where(
            *in_window, Message.role == "user", Message.user_emotion.is_not(None))
            .group_by(Message.user_emotion)):
        emotions["user"][emotion] = n
    for emotion, n in s.execute(select(Message.planned_emotion, func.count(Message.id)).where(
            *in_window, Message.role == "bot", Message.planned_emotion.is_not(None))
            .group_by(Message.planned_emotion)):
        emotions["bot"][emotion] = n

    return {
        "since": since.isoformat(), "until": until.isoformat(),
        "volume": {p: dict(sorted(days.items())) for p, days in sorted(volume.items())},
        "latency": latency, "latency_daily": latency_daily,
        "sticker_frequency": {"replies": replies, "with_sticker": with_sticker,
                              "share": with_sticker / replies if replies else None,
                              "daily": sticker_daily, "top": top_stickers},
        "emotions": emotions,
        "judge": judge_trends(s, since, until),
    }


def judge_trends(s: Session, since: datetime, until: datetime) -> dict[str, Any]:
    """Judge scores over time: each run's per-system means ("runs"), and the daily mean
    of the per-reply scores by the day the reply was made ("daily")."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for run_id, system, metric, value, created in s.execute(
            select(EvaluationScore.run_id, EvaluationScore.system, EvaluationScore.metric,
                   EvaluationScore.value, EvaluationScore.created_at)
            .where(EvaluationScore.metric.like("judge.%"),
                   EvaluationScore.message_id.is_(None),
                   EvaluationScore.created_at >= since, EvaluationScore.created_at < until)
            .order_by(EvaluationScore.created_at, EvaluationScore.id)):
        runs[metric][system].append({"run_id": run_id, "at": created.isoformat(),
                                     "value": value})
    day = _day(s, Message.created_at)
    daily: dict[str, dict[str, float]] = defaultdict(dict)
    for d, metric, mean in s.execute(
            select(day, EvaluationScore.metric, func.avg(EvaluationScore.value))
            .join(Message, Message.id == EvaluationScore.message_id)
            .where(EvaluationScore.metric.like("judge.%"), Message.created_at >= since,
                   Message.created_at < until)
            .group_by(day, EvaluationScore.metric).order_by(day)):
        daily[metric][_day_text(d)] = float(mean)
    return {"runs": {m: dict(v) for m, v in sorted(runs.items())},
            "daily": {m: dict(sorted(v.items())) for m, v in sorted(daily.items())}}
