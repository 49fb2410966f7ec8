"""The review dashboard as a FastAPI app, mounted at /review beside the web chat.

    GET  /login, POST /login, POST /logout   operators' sessions (review/auth.py)
    GET  /                                  conversations: search, filters, pages, export
    GET  /conversations/{id}                one conversation, marks, judge scores
    GET  /metrics                           charts and tables (review/metrics.py)
    GET  /evaluations, POST /evaluations    evaluation runs
    ...  actions in review/actions.py, JSON under /api/

Everything except the login page and the static CSS/JS needs a logged-in operator;
tests/review/test_access.py walks every route to check that.
"""

from __future__ import annotations

import html
import io
import logging
import secrets
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from engine.media import MediaError, decode_file
from engine.safety.sticker_check import GENERATED_NAME
from engine.stickers import StickerLibrary
from review import actions, auth, pages
from review.evaluations import EvaluationRuns, Evaluator
from review.params import MediaIndex, RowId
from review.settings import ReviewSettings
from review.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    STATIC,
    CsrfRejected,
    NotLoggedIn,
    ReviewContext,
    context,
    is_api,
    operator,
    render,
    root,
)
from storage.db import Database
from storage.media_store import MediaStore
from storage.models import Message
from storage.transcript import TranscriptStore
from storage.transcript_store import transcript_store

log = logging.getLogger(__name__)

# Forms and JSON here are small: an export of 10,000 ids is about 100 KB.
MAX_BODY_BYTES = 1024 * 1024
STATIC_FILES = {"review.css": "text/css", "review.js": "text/javascript"}
BROWSER_FORMATS = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg",
                   "jpg": "image/jpeg", "gif": "image/gif"}
# No inline script or style, nothing from elsewhere: an injected tag could not run.
CSP = ("default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def create_review_app(settings: ReviewSettings, library: StickerLibrary, *,
                      db: Database | None = None, transcripts: TranscriptStore | None = None,
                      media_store: MediaStore | None = None,
                      evaluator: Evaluator | None = None, bertscore: bool = True) -> FastAPI:
    """The dashboard app. Without `db`/`transcripts` it opens the configured database and
    (with REDIS_URL) the memory cache, exactly as the chat bots do."""
    if db is None:
        db = Database(settings.resolved_database_url)
    if transcripts is None:
        transcripts = transcript_store(settings, db)
    # Bodies are capped as they arrive, for every route: the login form needs no login.
    app = FastAPI(title="StickerBot review", docs_url=None, redoc_url=None, openapi_url=None,
                  max_body_size=MAX_BODY_BYTES)
    app.state.review = ReviewContext(
        settings=settings, library=library, db=db, transcripts=transcripts,
        media_store=media_store or MediaStore(settings.media_dir),
        limiter=auth.LoginLimiter(settings.review_login_max_failures,
                                  settings.review_login_window_s),
        runs=EvaluationRuns(db, settings, evaluator, bertscore=bertscore))

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, error: NotLoggedIn) -> Response:
        if error.api:
            return JSONResponse({"error": {"code": "not_logged_in",
                                           "message": "Log in first."}}, status_code=401)
        return RedirectResponse(f"{root(request)}/login", status_code=303)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, _: CsrfRejected) -> Response:
        return JSONResponse({"error": {"code": "csrf", "message":
                                       "The form expired or did not come from this "
                                       "dashboard: reload the page and try again."}},
                            status_code=403)

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, error: RequestValidationError) -> Response:
        """A query, path or form value review/params.py refuses: 400 naming the field."""
        message = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in error.errors()[:5])
        log.info("dashboard refused %r: 400 %s", request.url.path, message)
        if is_api(request):
            return JSONResponse({"error": {"code": "bad_request", "message": message}},
                                status_code=400)
        return HTMLResponse(f"<!doctype html><title>Bad request</title><p>Bad request: "
                            f"{html.escape(message)}</p><p><a href=\"{root(request)}/\">"
                            f"Back to the dashboard</a></p>", status_code=400)

    app.include_router(public_router())
    protected = [Depends(operator)]
    app.include_router(private_router(), dependencies=protected)
    app.include_router(pages.router, dependencies=protected)
    app.include_router(actions.router, dependencies=protected)
    return app


def _field(location: Any) -> str:
    """"until" from ("query", "until"); the form's field from ("body", "form", "ids")."""
    names = [str(part) for part in location if part not in ("query", "path", "body")]
    return ".".join(names) or "request"


def mount_review(app: FastAPI, settings: ReviewSettings, library: StickerLibrary) -> FastAPI:
    """Mount the dashboard at /review of `app` (the web chat); `stickerbot serve` and
    `stickerbot review` call this, so bots/ never imports review/."""
    review = create_review_app(settings, library)
    app.mount("/review", review)
    return review


def _cookie_path(request: Request) -> str:
    return root(request) or "/"


def public_router() -> APIRouter:
    router = APIRouter()

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        return _login_form(request)

    @router.post("/login")
    async def login(request: Request, username: str = Form(""), password: str = Form(""),
                    csrf_token: str = Form("")) -> Response:
        ctx = context(request)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, csrf_token):
            return _login_form(request, "The login form expired: please try again.", 403)
        address = request.client.host if request.client else "unknown"
        username = username.strip()[:64]
        wait = ctx.limiter.retry_after(username, address)
        if wait > 0:
            minutes = max(1, round(wait / 60))
            return _login_form(request, f"Too many failed logins. Try again in {minutes} "
                               f"minute{'s' if minutes != 1 else ''}.", 429)
        operator_id = await run_in_threadpool(auth.check_login, ctx.db, username, password)
        if operator_id is None:
            ctx.limiter.failed(username, address)
            return _login_form(request, "Wrong username or password.", 401)
        ctx.limiter.succeeded(username)
        token, session = await run_in_threadpool(
            auth.start_session, ctx.db, operator_id, ctx.settings.review_session_hours)
        response = RedirectResponse(f"{root(request)}/", status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                            secure=ctx.settings.review_secure_cookies,
                            path=_cookie_path(request),
                            max_age=int(ctx.settings.review_session_hours * 3600))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=_cookie_path(request))
        return response

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name],
                            headers={"Cache-Control": "public, max-age=3600"})

    return router


def _login_form(request: Request, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", status, login_csrf=token, error=error)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=context(request).settings.review_secure_cookies,
                        path=_cookie_path(request), max_age=3600)
    return response


def private_router() -> APIRouter:
    router = APIRouter()

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        await run_in_threadpool(auth.end_session, context(request).db,
                                request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(f"{root(request)}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=_cookie_path(request))
        return response

    @router.get("/media/{message_id}/{index}")
    async def media(request: Request, message_id: RowId, index: MediaIndex) -> Response:
        """A picture a person sent, from the media store (or the library sticker they
        picked); animated formats are shown as their first frame."""
        ctx = context(request)
        with ctx.db.session() as s:
            message = s.get(Message, message_id)
            items = list(message.media or []) if message is not None else []
        if not 0 <= index < len(items) or not isinstance(items[index], dict):
            raise HTTPException(404)
        item = items[index]
        if item.get("library_id") in ctx.library:
            return _image(ctx.library.png_file(item["library_id"]))
        try:
            path = ctx.media_store.resolve(str(item.get("path") or ""))
        except ValueError:
            raise HTTPException(404) from None
        if not path.is_file():
            raise HTTPException(404)
        fmt = str(item.get("format") or path.suffix.lstrip(".")).lower()
        if fmt in BROWSER_FORMATS:
            return FileResponse(path, media_type=BROWSER_FORMATS[fmt],
                                headers={"Cache-Control": "private, max-age=3600"})
        try:
            decoded = await run_in_threadpool(decode_file, path)
        except MediaError:
            raise HTTPException(404) from None
        buffer = io.BytesIO()
        decoded.image.save(buffer, format="PNG")
        return Response(buffer.getvalue(), media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    @router.get("/stickers/{name}")
    async def sticker(request: Request, name: str) -> Response:
        library = context(request).library
        sticker_id, _, ext = name.rpartition(".")
        if ext != "png" or sticker_id not in library:
            raise HTTPException(404)
        return _image(library.png_file(sticker_id))

    @router.get("/generated/{name}")
    async def generated(request: Request, name: str) -> Response:
        path = context(request).settings.generated_dir / name
        if not GENERATED_NAME.fullmatch(name) or not path.is_file():
            raise HTTPException(404)
        return _image(path)

    return router


def _image(path: Any) -> FileResponse:
    return FileResponse(path, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=86400"})
