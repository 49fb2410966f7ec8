"""Every value the dashboard reads from a query string, a path or a form, validated by
one pydantic type each, with bounded integers and dates: anything else is a 400 with
the field's name (review/app.py's handler), never a 500 from deep inside a query.

Ids are bounded by PostgreSQL's integer (SQLite takes more, nothing needs it); dates by
the last day whose next midnight Python can still represent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from review.queries import Filters

MAX_ID = 2**31 - 1
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 30)


def _blank_is_none(value: Any) -> Any:
    """An empty form or query field means "not given"."""
    return None if isinstance(value, str) and not value.strip() else value


def _clipped(limit: int) -> AfterValidator:
    return AfterValidator(lambda value: value.strip()[:limit])


Blank = BeforeValidator(_blank_is_none)
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Day = Annotated[Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY)] | None, Blank]
Score = Annotated[Annotated[float, Field(ge=1, le=5, allow_inf_nan=False)] | None, Blank]
YesNo = Annotated[Literal["yes", "no"] | None, Blank]
Cursor = Annotated[Id | None, Blank]

# Path parameters.
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
MediaIndex = Annotated[int, Path(ge=0, le=1000)]
RunId = Annotated[str, Path(max_length=200)]


def day_start(day: date | None, *, end: bool = False) -> datetime | None:
    """Midnight UTC of `day`; with `end` the next one (an inclusive "until" day)."""
    if day is None:
        return None
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


class ListQuery(BaseModel):
    """The conversation list's query string: filters and the page cursor."""

    model_config = ConfigDict(extra="ignore")

    q: Annotated[str, _clipped(200)] = ""
    platform: Annotated[str, _clipped(32)] = ""
    user: Annotated[str, _clipped(128)] = ""
    emotion: Annotated[str, _clipped(32)] = ""
    since: Day = None
    until: Day = None
    has_sticker: YesNo = None
    flagged: YesNo = None
    judge_min: Score = None
    judge_max: Score = None
    before: Cursor = None
    after: Cursor = None
    done: Annotated[str, _clipped(32)] = ""

    def filters(self) -> Filters:
        yes_no = {"yes": True, "no": False, None: None}
        return Filters(q=self.q, platform=self.platform, user=self.user,
                       emotion=self.emotion, since=day_start(self.since),
                       until=day_start(self.until, end=True),
                       has_sticker=yes_no[self.has_sticker], flagged=yes_no[self.flagged],
                       judge_min=self.judge_min, judge_max=self.judge_max)


class EvaluationForm(BaseModel):
    """The form that starts an evaluation run."""

    since: Day = None
    until: Day = None
    platform: Annotated[str, _clipped(32)] = ""
    model_version: Annotated[str, _clipped(200)] = ""
    judge: str = ""
    judge_samples: Annotated[int, Field(ge=1, le=10)] = 5
