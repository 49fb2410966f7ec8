"""What every dashboard route shares: the context object, the templates, and the login
and CSRF checks that the protected routers depend on.

Protected routers carry `Depends(operator)`: without a live session, pages answer 303 to
the login page and /api routes 401, before the route reads anything. A POST must also
carry the session's CSRF token (form field `csrf_token`, or header X-CSRF-Token).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

from engine.stickers import StickerLibrary
from review import auth
from review.evaluations import EvaluationRuns
from review.settings import ReviewSettings
from storage.db import Database
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "review_session"
LOGIN_CSRF_COOKIE = "review_login_csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass
class ReviewContext:
    settings: ReviewSettings
    library: StickerLibrary
    db: Database
    transcripts: TranscriptStore
    media_store: MediaStore
    limiter: auth.LoginLimiter
    runs: EvaluationRuns


class NotLoggedIn(Exception):
    def __init__(self, api: bool) -> None:
        super().__init__("not logged in")
        self.api = api


class CsrfRejected(Exception):
    pass


def context(request: Request) -> ReviewContext:
    return request.app.state.review


def root(request: Request) -> str:
    """Where the dashboard is mounted ("/review"), for links and the cookie path."""
    return request.scope.get("root_path", "").rstrip("/")


def is_api(request: Request) -> bool:
    return request.url.path[len(root(request)):].startswith("/api/")


async def operator(request: Request) -> auth.SessionInfo:
    """The logged-in operator; refuses the request otherwise (see module docstring)."""
    ctx = context(request)
    session = await run_in_threadpool(auth.find_session, ctx.db,
                                      request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise NotLoggedIn(api=is_api(request))
    if request.method not in ("GET", "HEAD"):
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            given = (await request.form()).get("csrf_token")  # cached for the route
        if not auth.csrf_ok(session, given if isinstance(given, str) else None):
            raise CsrfRejected()
    request.state.operator = session
    return session


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = lambda v: v.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if v else ""
    env.filters["num"] = lambda v, digits=2: "" if v is None else f"{v:.{digits}f}"
    env.filters["q"] = lambda v: quote(str(v), safe="")
    return env


ENV = _environment()


def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    session = getattr(request.state, "operator", None)
    html = ENV.get_template(name).render(root=root(request), operator=session,
                                         csrf=session.csrf_token if session else "",
                                         path=request.url.path, **values)
    return HTMLResponse(html, status_code=status)
