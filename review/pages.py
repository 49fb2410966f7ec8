"""The dashboard's pages and their JSON twins: conversations, one conversation, metrics,
evaluation runs. All read-only; what changes data is in review/actions.py."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from review import charts, queries
from review.metrics import EMOTIONS, dashboard_metrics, window
from review.params import ListQuery, RowId, RunId
from review.web import context, render
from storage.models import Message
from tasks.jobs import UNFINISHED

router = APIRouter()

NOTICES = {"deleted": "The user's data was deleted.", "marked": "Saved.",
           "started": "The evaluation run is queued; this page follows its progress."}
RUN_ERRORS = {"busy": "An evaluation is running already; wait for it to finish."}


def _page(request: Request, params: ListQuery) -> queries.Page:
    with context(request).db.session() as s:
        return queries.list_conversations(s, params.filters(), before=params.before,
                                          after=params.after)


@router.get("/")
async def conversations(request: Request, params: Annotated[ListQuery, Query()]) -> Response:
    page = await run_in_threadpool(_page, request, params)
    with context(request).db.session() as s:
        platforms = queries.platforms(s)
    kept = {k: v for k, v in request.query_params.items()
            if k not in ("before", "after", "done") and v}
    return render(request, "conversations.html", page=page,
                  platforms=platforms, emotions=EMOTIONS, params=kept,
                  newer_qs=urlencode({**kept, "after": page.newer}) if page.newer else "",
                  older_qs=urlencode({**kept, "before": page.older}) if page.older else "",
                  notice=NOTICES.get(params.done, ""))


@router.get("/api/conversations")
async def conversations_json(request: Request,
                             params: Annotated[ListQuery, Query()]) -> Response:
    page = await run_in_threadpool(_page, request, params)
    rows = [{**asdict(r), "created_at": r.created_at.isoformat(),
             "last_at": r.last_at.isoformat() if r.last_at else None} for r in page.rows]
    return JSONResponse({"conversations": rows, "total": page.total,
                         "newer": page.newer, "older": page.older})


def sticker_urls(request: Request, message: Message) -> list[dict[str, str]]:
    """Image URLs (under the dashboard) of the stickers and pictures on a message."""
    from review.web import root

    base, library = root(request), context(request).library
    if message.role == "user":
        return [{"url": f"{base}/media/{message.id}/{i}",
                 "label": str(item.get("emoji") or item.get("format") or "picture")}
                for i, item in enumerate(message.media or []) if isinstance(item, dict)]
    if not message.sticker_id:
        return []
    if message.sticker_id in library:
        sticker = library.get(message.sticker_id)
        return [{"url": f"{base}/stickers/{sticker.id}.png",
                 "label": f"{sticker.emoji or ''} {sticker.name}".strip()}]
    name = str((message.sticker_meta or {}).get("image_path", "")).rsplit("/", 1)[-1]
    if name:
        return [{"url": f"{base}/generated/{name}", "label": "generated sticker"}]
    return []


@router.get("/conversations/{conversation_id}")
async def conversation(request: Request, conversation_id: RowId) -> Response:
    def load() -> Any:
        with context(request).db.session() as s:
            return queries.conversation_view(s, conversation_id)

    view = await run_in_threadpool(load)
    if view is None:
        raise HTTPException(404)
    images = {m.message.id: sticker_urls(request, m.message) for m in view.messages}
    return render(request, "conversation.html", view=view, images=images,
                  judge_metrics=queries.JUDGE_METRICS,
                  notice=NOTICES.get(request.query_params.get("done", ""), ""))


Days = Annotated[int, Query(ge=1, le=3650)]


def _metrics(request: Request, days: int) -> dict[str, Any]:
    since, until = window(days)
    with context(request).db.session() as s:
        return dashboard_metrics(s, since, until)


@router.get("/metrics")
async def metrics_page(request: Request, days: Days = 30) -> Response:
    m = await run_in_threadpool(_metrics, request, days)
    latency_series = {f"p{p}": {d: v[f"p{p}"] for d, v in m["latency_daily"].items()}
                      for p in (50, 90, 99)}
    judge_daily = m["judge"]["daily"]
    judge_runs = {f"{metric} {system}": {p["at"][:16]: p["value"] for p in points}
                  for metric, systems in m["judge"]["runs"].items()
                  for system, points in systems.items()}
    svg = {
        "volume": charts.line_chart("Messages per day by platform", m["volume"], y_min=0),
        "latency": charts.line_chart("Reply latency per day (ms)", latency_series, y_min=0),
        "stickers": charts.line_chart("Share of replies with a sticker",
                                      {"share": m["sticker_frequency"]["daily"]},
                                      y_min=0, y_max=1),
        "emotions": charts.bar_chart("Emotions: users (detected) vs bot (planned)",
                                     list(EMOTIONS), m["emotions"]),
        "judge_daily": charts.line_chart("Judge scores of replies, by day", judge_daily,
                                         y_min=1, y_max=5),
        "judge_runs": charts.line_chart("Judge scores per evaluation run", judge_runs,
                                        y_min=1, y_max=5),
    }
    return render(request, "metrics.html", m=m, svg=svg, days=days, emotions=EMOTIONS)


@router.get("/api/metrics")
async def metrics_json(request: Request, days: Days = 30) -> Response:
    return JSONResponse(await run_in_threadpool(_metrics, request, days))


def _job_json(job: Any) -> dict[str, Any]:
    result = job.result or {}
    return {"id": job.id, "state": job.state, "progress": job.progress,
            "run_id": result.get("run_id"), "error": job.error,
            "started_at": job.created_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "summary": result.get("summary") or {}}


@router.get("/evaluations")
async def evaluations(request: Request) -> Response:
    runs = context(request).runs
    stored = await run_in_threadpool(runs.stored_runs)
    jobs = await run_in_threadpool(runs.jobs)
    with context(request).db.session() as s:
        platforms = queries.platforms(s)
    return render(request, "evaluations.html", jobs=jobs, stored=stored,
                  platforms=platforms, running=any(j.state in UNFINISHED for j in jobs),
                  error=RUN_ERRORS.get(request.query_params.get("error", ""), ""),
                  notice=NOTICES.get(request.query_params.get("done", ""), ""))


@router.get("/api/evaluations")
async def evaluations_json(request: Request) -> Response:
    jobs = await run_in_threadpool(context(request).runs.jobs)
    return JSONResponse({"jobs": [_job_json(j) for j in jobs]})


@router.get("/evaluations/{run_id}")
async def evaluation(request: Request, run_id: RunId) -> Response:
    runs = context(request).runs
    scores = await run_in_threadpool(runs.scores, run_id)
    replies = await run_in_threadpool(runs.reply_scores, run_id)
    if not scores and not replies:
        raise HTTPException(404)
    return render(request, "evaluation.html", run_id=run_id, scores=scores, replies=replies)
