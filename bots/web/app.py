"""The local web chat: a page and the small JSON API it speaks.

Run it with `stickerbot serve` and open http://127.0.0.1:8080.

    GET  /                    the page; sets the signed identity cookie (bots/web/identity.py)
    POST /api/chat/session    a new identity for scripts: {"user", "token"} (bearer token)
    POST /api/chat/messages   JSON {"text", "sticker_id"?, "message_id"?}
                              or multipart with fields text, message_id, sticker (one file)
    POST /api/chat/forget     JSON {"confirm": true}: /forget for the web chat
    GET  /api/stickers        the sticker library, for the picker
    GET  /stickers/{id}.png   a library sticker (also .webp)
    GET  /generated/{name}.png  a sticker PEGS generated or composed (gen / rag modes)
    GET  /healthz             liveness
    GET  /metrics             Prometheus metrics

Writes need the cookie or a bearer token, and are refused from other sites' pages. Every
body is capped as it arrives, with or without a Content-Length (bots/web/body_limit.py),
so a file is never spooled past the limit; floods are refused per person, per client
address and when too many turns wait already (bots/admission.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile

from bots.admission import Busy, WaitingTurns
from bots.ratelimit import RateLimiter
from bots.texts import FORGET_DONE, files_phrase
from bots.web.body_limit import BodyLimit, BodyTooLarge
from bots.web.identity import COOKIE, Identities, IdentityError, check_same_origin
from engine.media import MediaError, MediaLimits, decode_bytes
from engine.settings import Settings
from engine.stickers import StickerLibrary
from engine.types import Media, MediaKind, Reply, UserTurn
from storage.forget import forget_person
from storage.media_store import MediaStore
from storage.transcript import TranscriptStore
from tasks.metrics import metrics_text
from tasks.submit import Submitter

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
MESSAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,80}")
GENERATED_NAME = re.compile(r"[0-9a-f]{16,64}\.png")  # content hashes (engine/pegs/reply.py)
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


def sticker_json(library: StickerLibrary, sticker_id: str) -> dict[str, Any]:
    sticker = library.get(sticker_id)
    return {
        "id": sticker.id,
        "url": f"/stickers/{sticker.id}.png",
        "emotion": sticker.emotion.value,
        "emoji": sticker.emoji,
        "name": sticker.name,
        "description": sticker.content_description,
    }


def generated_json(reply: Reply) -> dict[str, Any] | None:
    """A generated sticker, when its file is one the generated route serves."""
    name = Path(reply.sticker.image_path).name
    if not GENERATED_NAME.fullmatch(name):
        return None
    return {"id": reply.sticker.id, "url": f"/generated/{name}",
            "emotion": reply.sticker.emotion.value, "emoji": None, "name": "",
            "description": reply.sticker.description, "mode": reply.sticker.mode}


def reply_json(library: StickerLibrary, reply: Reply, latency_ms: int) -> dict[str, Any]:
    sticker = None
    if reply.sticker is not None and reply.sticker.id in library:
        sticker = sticker_json(library, reply.sticker.id)
    elif reply.sticker is not None:
        sticker = generated_json(reply)
    return {
        "reply": {
            "text": reply.text,
            "sticker": sticker,
            "user_emotion": reply.user_emotion.value,
            "user_valence": round(reply.user_valence, 3),
            "planned_emotion": reply.planned_emotion.value,
            "latency_ms": latency_ms,
            # engine.safety's label: a crisis reply or a check-in question (else None).
            "safety": reply.safety,
        }
    }


def create_app(settings: Settings, submitter: Submitter, library: StickerLibrary, *,
               transcripts: TranscriptStore | None = None) -> FastAPI:
    """The web chat. `transcripts` serves /forget (default: the configured database, and
    the Redis memory cache with REDIS_URL, opened on first use)."""
    app = FastAPI(title="StickerBot web chat", docs_url=None, redoc_url=None)
    media_store = MediaStore(settings.media_dir)
    stores: dict[str, TranscriptStore] = {"t": transcripts} if transcripts else {}

    def transcript_store() -> TranscriptStore:
        if "t" not in stores:
            from bots.serve import transcript_store as open_store  # bots.serve imports us
            from storage.db import Database

            stores["t"] = open_store(settings, Database(settings.resolved_database_url))
        return stores["t"]
    limits = MediaLimits.from_settings(settings)
    identities = Identities.from_settings(settings)
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    address_limiter = RateLimiter(settings.address_rate_limit_per_minute,
                                  settings.address_rate_limit_burst)
    waiting = WaitingTurns(settings.max_waiting_turns, settings.max_waiting_per_address)
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

    def writer(request: Request) -> str:
        """Who writes: a write from another site's page is refused first."""
        check_same_origin(request)
        return identities.authenticate(request)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "stickers": len(library)}

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = metrics_text()
        return Response(body, media_type=content_type)

    @app.get("/")
    async def page(request: Request) -> FileResponse:
        response = FileResponse(STATIC_DIR / "index.html")
        if identities.user_of(request.cookies.get(COOKIE)) is None:
            user, _ = identities.issue()
            identities.set_cookie(request, response, user)
        return response

    @app.post("/api/chat/session")
    async def session(request: Request) -> dict[str, str]:
        check_same_origin(request)
        user, token = identities.issue()
        return {"user": user, "token": token}

    @app.get("/api/stickers")
    async def stickers(emotion: str | None = None) -> dict[str, Any]:
        items = [sticker_json(library, s.id) for s in library
                 if emotion is None or s.emotion.value == emotion]
        return {"stickers": items}

    @app.get("/stickers/{name}")
    async def sticker_file(name: str) -> FileResponse:
        sticker_id, _, ext = name.rpartition(".")
        if ext not in ("png", "webp") or sticker_id not in library:
            raise ChatError(404, "not_found", "No such sticker.")
        path = library.png_file(sticker_id) if ext == "png" else library.webp_file(sticker_id)
        return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/generated/{name}")
    async def generated_file(name: str) -> FileResponse:
        path = settings.generated_dir / name
        if not GENERATED_NAME.fullmatch(name) or not path.is_file():
            raise ChatError(404, "not_found", "No such sticker.")
        # Content-addressed: a name never changes what it shows.
        return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000"})

    @app.post("/api/chat/messages")
    async def post_message(request: Request) -> JSONResponse:
        received = time.perf_counter()
        user = writer(request)
        fields, upload = await read_fields(request, settings, files=True)
        check_claimed_user(fields, user)
        text = str(fields.get("text") or "")
        if len(text) > settings.max_text_chars:
            raise ChatError(413, "text_too_long",
                            f"Your message is too long: the limit is "
                            f"{settings.max_text_chars} characters.")
        message_id = str(fields.get("message_id") or uuid.uuid4().hex)
        if not MESSAGE_ID.fullmatch(message_id):
            raise ChatError(400, "bad_message_id", "message_id must be 1-80 plain characters.")
        media = []
        if fields.get("sticker_id"):
            media.append(library_media(library, str(fields["sticker_id"])))
        checked = await checked_upload(upload, limits) if upload is not None else None
        if not text.strip() and not media and checked is None:
            raise ChatError(400, "empty", "Send some text or a sticker.")
        address = request.client.host if request.client else "unknown"
        for key, table, who in ((user, limiter, "You're"),
                                (address, address_limiter, "Your network is")):
            if not table.allow(key):
                wait = max(1, round(table.retry_after(key)))
                raise Busy(429, "rate_limited",
                           f"{who} sending messages very fast. Please wait {wait} s.", wait)
        with waiting.hold(address), ExitStack() as leases:
            if checked is not None:
                data, fmt = checked
                # Leased before it is stored, until the turn's rows refer to it.
                path = leases.enter_context(media_store.lease(media_store.path_for(data, fmt)))
                await asyncio.to_thread(media_store.save, data, fmt)
                media.append(Media(kind=MediaKind.sticker, path=str(path), format=fmt))
            turn = UserTurn(platform="web", chat_id=user, user_id=user,
                            message_id=message_id, text=text, media=media)
            try:
                reply = await submitter.submit(turn)
            except Busy:
                raise
            except Exception:
                log.exception("reply failed for turn %s", turn.task_id)
                raise ChatError(503, "reply_failed",
                                "Sorry, I couldn't answer just now. Please try again.") from None
        latency_ms = int((time.perf_counter() - received) * 1000)
        return JSONResponse(reply_json(library, reply, latency_ms))

    @app.post("/api/chat/forget")
    async def forget(request: Request) -> JSONResponse:
        """Delete everything stored about the caller (messages, memory, media), the
        same code path as Telegram's and Discord's /forget and the dashboard's."""
        user = writer(request)
        fields, _ = await read_fields(request, settings, files=False)
        check_claimed_user(fields, user)
        if fields.get("confirm") is not True:
            raise ChatError(400, "confirm", "Send \"confirm\": true to delete everything.")
        removed = await asyncio.to_thread(forget_person, transcript_store(), media_store,
                                          "web", user)
        log.info("forgot a web chat user and %d media files", removed)
        return JSONResponse({"forgotten": {"files": removed,
                                           "message": FORGET_DONE.format(
                                               files=files_phrase(removed))}})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def check_claimed_user(fields: dict[str, Any], user: str) -> None:
    """Older clients sent their own "user": only the caller's own id is accepted."""
    claimed = fields.get("user")
    if claimed not in (None, "", user):
        raise ChatError(400, "bad_user", "The web chat knows who you are from its cookie "
                        "or bearer token: leave \"user\" out.")


def too_large_message(limit: int) -> str:
    size = f"{limit / (1024 * 1024):.0f} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return f"That file is too big: the limit is {size}."


async def read_fields(request: Request, settings: Settings, *,
                      files: bool) -> tuple[dict[str, Any], UploadFile | None]:
    """The request's fields, from JSON (or, with `files`, multipart for an upload), and
    the uploaded file if any. A url-encoded form is never accepted: a page of another
    site can post one without asking."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError, RecursionError):  # nested 100k deep, too
            raise ChatError(400, "bad_json", "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise ChatError(400, "bad_json", "Send a JSON object.")
        return body, None
    if files and content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=8, max_fields=10,
                                      max_part_size=settings.max_text_chars * 4 + 1024)
        except BodyTooLarge:
            raise
        except Exception as error:  # the multipart parser raises several kinds
            raise ChatError(400, "bad_form", f"The form could not be read: {error}") from None
        uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if len(uploads) > 1:
            raise ChatError(400, "too_many_files", "Send one file per message.")
        fields = {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
        return fields, uploads[0] if uploads else None
    raise ChatError(415, "bad_content_type", "Send JSON, or multipart/form-data with a file."
                    if files else "Send JSON.")


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
