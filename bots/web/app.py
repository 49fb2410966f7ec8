"""The local web chat: a page and the small JSON API it speaks.

Run it with `stickerbot serve` and open http://127.0.0.1:8080.

    GET  /                    the page; sets the signed identity cookie (bots/web/identity.py)
    POST /api/chat/session    a new identity for scripts: {"user", "token"} (bearer token)
    POST /api/chat/messages   JSON {"text", "sticker_id"?, "message_id"?}
                              or multipart with fields text, message_id, sticker (one file)
                              (bots/web/bodies.py: each body type has its own
                              endpoint, read by FastAPI)
    POST /api/chat/forget     JSON {"confirm": true}: /forget for the web chat
    GET  /api/stickers        the sticker library, for the picker
    GET  /stickers/{id}.png   a library sticker (also .webp)
    GET  /generated/{name}.png  a sticker PEGS generated or composed (gen / rag modes)
    GET  /healthz             liveness
    GET  /metrics             Prometheus metrics

Writes need the cookie or a bearer token, and are refused from other sites' pages (the
`Writer` dependency, checked once FastAPI has read the capped body). Every
body is capped as it arrives, with or without a Content-Length (bots/web/body_limit.py),
so a file is never spooled past the limit; floods are refused per person, per client
address and when too many turns wait already (bots/admission.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request, UploadFile
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile as FormFile
from starlette.exceptions import HTTPException

from bots.admission import Busy, WaitingTurns
from bots.ratelimit import RateLimiter
from bots.settings import BotSettings
from bots.texts import FORGET_DONE, files_phrase
from bots.web.bodies import (
    CONFIRM,
    FIELD_ERRORS,
    ChatMessage,
    ForgetRequest,
    JsonRoute,
    MultipartRoute,
    invalid_body,
)
from bots.web.body_limit import BodyLimit, BodyTooLarge
from bots.web.identity import COOKIE, Identities, IdentityError, check_same_origin
from bots.web.replies import reply_json, sticker_json
from engine.media import MediaError, MediaLimits, decode_bytes
from engine.safety.sticker_check import GENERATED_NAME
from engine.stickers import StickerLibrary
from engine.types import Media, MediaKind, UserTurn
from storage.db import Database
from storage.forget import forget_person
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from storage.transcript_store import transcript_store
from tasks.metrics import metrics_text
from tasks.submit import Submitter

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# Status per MediaError code: what the person sent is too big, unknown, or broken.
MEDIA_STATUS = {"too_large": 413, "too_many_pixels": 413, "too_long": 413, "unsupported": 415}


class ChatError(Exception):
    """A refusal: status, code and message for the person; `detail` only for the log."""

    def __init__(self, status: int, code: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def refused(request: Request, status: int, code: str, message: str,
            detail: str = "") -> JSONResponse:
    """The error answer, and its one log line (never the text or a file's name)."""
    log.info("web chat refused %r: %d %s%s", request.url.path, status, code,
             f" ({detail})" if detail else "")
    return error_response(status, code, message)


class WebChat:
    """What every route of the web chat shares (app.state.chat)."""

    def __init__(self, settings: BotSettings, submitter: Submitter, library: StickerLibrary,
                 transcripts: TranscriptStore | None) -> None:
        self.settings, self.submitter, self.library = settings, submitter, library
        self._transcripts = transcripts
        self.media_store = MediaStore(settings.media_dir)
        self.limits = MediaLimits.from_settings(settings)
        self.identities = Identities.from_settings(settings)
        self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        self.address_limiter = RateLimiter(settings.address_rate_limit_per_minute,
                                           settings.address_rate_limit_burst)
        self.waiting = WaitingTurns(settings.max_waiting_turns,
                                    settings.max_waiting_per_address)

    def transcripts(self) -> TranscriptStore:
        """/forget's store: unless given, the configured database (and the Redis memory
        cache with REDIS_URL), opened on first use."""
        if self._transcripts is None:
            self._transcripts = transcript_store(
                self.settings, Database(self.settings.resolved_database_url))
        return self._transcripts


def web_chat(request: Request) -> WebChat:
    return request.app.state.chat


def writer(request: Request) -> str:
    """Who writes: a write from another site's page is refused first."""
    check_same_origin(request)
    return web_chat(request).identities.authenticate(request)


Writer = Annotated[str, Depends(writer)]


json_routes = APIRouter(route_class=JsonRoute)
multipart_routes = APIRouter(route_class=MultipartRoute)
router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    return {"status": "ok", "stickers": len(web_chat(request).library)}


@router.get("/metrics")
async def metrics() -> Response:
    body, content_type = metrics_text()
    return Response(body, media_type=content_type)


@router.get("/")
async def page(request: Request) -> FileResponse:
    identities = web_chat(request).identities
    response = FileResponse(STATIC_DIR / "index.html")
    if identities.user_of(request.cookies.get(COOKIE)) is None:
        user, _ = identities.issue()
        identities.set_cookie(request, response, user)
    return response


@router.post("/api/chat/session")
async def session(request: Request) -> dict[str, str]:
    check_same_origin(request)
    user, token = web_chat(request).identities.issue()
    return {"user": user, "token": token}


@router.get("/api/stickers")
async def stickers(request: Request, emotion: str | None = None) -> dict[str, Any]:
    library = web_chat(request).library
    items = [sticker_json(library, s.id) for s in library
             if emotion is None or s.emotion.value == emotion]
    return {"stickers": items}


@router.get("/stickers/{name}")
async def sticker_file(request: Request, name: str) -> FileResponse:
    library = web_chat(request).library
    sticker_id, _, ext = name.rpartition(".")
    if ext not in ("png", "webp") or sticker_id not in library:
        raise ChatError(404, "not_found", "No such sticker.")
    path = library.png_file(sticker_id) if ext == "png" else library.webp_file(sticker_id)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/generated/{name}")
async def generated_file(request: Request, name: str) -> FileResponse:
    path = web_chat(request).settings.generated_dir / name
    if not GENERATED_NAME.fullmatch(name) or not path.is_file():
        raise ChatError(404, "not_found", "No such sticker.")
    # Content-addressed: a name never changes what it shows.
    return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000"})


@json_routes.post("/api/chat/messages")
async def post_json(request: Request, message: ChatMessage, user: Writer) -> JSONResponse:
    return await answer(request, user, message, None)


@multipart_routes.post("/api/chat/messages")
async def post_form(request: Request, message: Annotated[ChatMessage, Form()], user: Writer,
                    sticker: UploadFile | None = None) -> JSONResponse:
    form = await request.form()  # as FastAPI parsed it, whatever the files' field names
    if sum(isinstance(value, FormFile) for _, value in form.multi_items()) > 1:
        raise ChatError(400, "too_many_files", "Send one file per message.")
    return await answer(request, user, message, sticker)


@router.post("/api/chat/messages")
async def post_other(_writer: Writer) -> None:
    """A url-encoded form is never accepted: a page of another site can post one without
    asking."""
    raise ChatError(415, "bad_content_type", "Send JSON, or multipart/form-data with a file.")


async def answer(request: Request, user: str, message: ChatMessage,
                 upload: UploadFile | None) -> JSONResponse:
    received = time.perf_counter()
    chat = web_chat(request)
    settings = chat.settings
    check_claimed_user(message.user, user)
    text = message.text or ""
    if len(text) > settings.max_text_chars:
        raise ChatError(413, "text_too_long", f"Your message is too long: the limit is "
                                              f"{settings.max_text_chars} characters.")
    media = [library_media(chat.library, message.sticker_id)] if message.sticker_id else []
    checked = await checked_upload(upload, chat.limits) if upload is not None else None
    if not text.strip() and not media and checked is None:
        raise ChatError(400, "empty", "Send some text or a sticker.")
    address = request.client.host if request.client else "unknown"
    for key, table, who in ((user, chat.limiter, "You're"),
                            (address, chat.address_limiter, "Your network is")):
        if not table.allow(key):
            wait = max(1, round(table.retry_after(key)))
            raise Busy(429, "rate_limited",
                       f"{who} sending messages very fast. Please wait {wait} s.", wait)
    with chat.waiting.hold(address), ExitStack() as leases:
        if checked is not None:
            data, fmt = checked
            store = chat.media_store
            # Leased before it is stored, until the turn's rows refer to it.
            path = leases.enter_context(store.lease(store.path_for(data, fmt)))
            await asyncio.to_thread(store.save, data, fmt)
            media.append(Media(kind=MediaKind.sticker, path=str(path), format=fmt))
        turn = UserTurn(platform="web", chat_id=user, user_id=user,
                        message_id=message.message_id or uuid.uuid4().hex, text=text,
                        media=media)
        try:
            reply = await chat.submitter.submit(turn)
        except Busy:
            raise
        except Exception:
            log.exception("reply failed for turn %s", turn.task_id)
            raise ChatError(503, "reply_failed",
                            "Sorry, I couldn't answer just now. Please try again.") from None
    latency_ms = int((time.perf_counter() - received) * 1000)
    return JSONResponse(reply_json(chat.library, reply, latency_ms))


@json_routes.post("/api/chat/forget")
async def forget(request: Request, body: ForgetRequest, user: Writer) -> JSONResponse:
    """Delete everything stored about the caller (messages, memory, media), the same code
    path as Telegram's and Discord's /forget and the dashboard's."""
    check_claimed_user(body.user, user)
    if not body.confirm:
        raise ChatError(*CONFIRM)
    chat = web_chat(request)
    removed = await asyncio.to_thread(forget_person, chat.transcripts(), chat.media_store,
                                      "web", user)
    log.info("forgot a web chat user and %d media files", removed)
    return JSONResponse({"forgotten": {"files": removed, "message": FORGET_DONE.format(
        files=files_phrase(removed))}})


@router.post("/api/chat/forget")
async def forget_other(_writer: Writer) -> None:
    raise ChatError(415, "bad_content_type", "Send JSON.")


def create_app(settings: BotSettings, submitter: Submitter, library: StickerLibrary, *,
               transcripts: TranscriptStore | None = None) -> FastAPI:
    """The web chat. `transcripts` serves /forget (default: the configured database, and
    the Redis memory cache with REDIS_URL, opened on first use)."""
    app = FastAPI(title="StickerBot web chat", docs_url=None, redoc_url=None)
    app.state.chat = WebChat(settings, submitter, library, transcripts)
    # Multipart overhead and the text field come on top of the file itself.
    app.add_middleware(BodyLimit, message=too_large_message(settings.max_upload_bytes),
                       max_bytes=settings.max_upload_bytes + settings.max_text_chars * 4
                       + 64 * 1024)

    @app.exception_handler(ChatError)
    async def chat_error(request: Request, error: ChatError) -> JSONResponse:
        return refused(request, error.status, error.code, error.message, error.detail)

    @app.exception_handler(IdentityError)
    async def identity_error(request: Request, error: IdentityError) -> JSONResponse:
        return refused(request, error.status, error.code, error.message)

    @app.exception_handler(Busy)
    async def busy(request: Request, error: Busy) -> JSONResponse:
        response = refused(request, error.status, error.code, error.message)
        response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, error: BodyTooLarge) -> JSONResponse:
        return refused(request, 413, "too_large", str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_fields(request: Request, error: RequestValidationError) -> JSONResponse:
        return refused(request, *invalid_body(error.errors()))

    @app.exception_handler(HTTPException)
    async def unreadable_body(request: Request, error: HTTPException) -> Response:
        """FastAPI answers a body it could not parse with 400 (other errors as it does)."""
        if error.status_code != 400:
            return await http_exception_handler(request, error)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            return refused(request, 400, "bad_form", f"The form could not be read: "
                                                     f"{error.detail}")
        return refused(request, 400, "bad_json", "The request body is not valid JSON.")

    app.include_router(json_routes)
    app.include_router(multipart_routes, form_limits={
        "max_files": 8, "max_fields": 10, "max_part_size": settings.max_text_chars * 4 + 1024})
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def check_claimed_user(claimed: str | None, user: str) -> None:
    """Older clients sent their own "user": only the caller's own id is accepted."""
    if claimed not in (None, "", user):
        raise ChatError(*FIELD_ERRORS["user"])


def too_large_message(limit: int) -> str:
    size = f"{limit / (1024 * 1024):.0f} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return f"That file is too big: the limit is {size}."


def library_media(library: StickerLibrary, sticker_id: str) -> Media:
    if sticker_id not in library:
        raise ChatError(400, "unknown_sticker", "That sticker is not in the library.")
    sticker = library.get(sticker_id)
    return Media(kind=MediaKind.sticker, path=str(library.png_file(sticker_id)), format="png",
                 emoji=sticker.emoji, set_name=sticker.pack, library_id=sticker_id)


async def checked_upload(upload: UploadFile, limits: MediaLimits) -> tuple[bytes, str]:
    """An uploaded picture checked fully (size, format, decodability): its bytes and
    format, not stored yet."""
    data = await upload.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise ChatError(413, "too_large", too_large_message(limits.max_bytes))
    if not data:
        raise ChatError(400, "empty_file", "That file is empty.")
    try:
        decoded = await asyncio.to_thread(decode_bytes, data, limits, upload.filename)
    except MediaError as error:
        # The type and size only: a file name can be personal ("Holiday_with_Maria").
        raise ChatError(MEDIA_STATUS.get(error.code, 422), error.code, error.user_message,
                        f"upload {upload.content_type!r:.40}, {len(data)} bytes") from None
    # The file name is not used: names like IMG_2034 say nothing about the feeling.
    return data, decoded.format
