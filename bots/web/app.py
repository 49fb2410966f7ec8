"""The local web chat: a page and the small JSON API it speaks.

Run it with `stickerbot serve` and open http://127.0.0.1:8080.

    POST /api/chat/messages   JSON {"user", "text", "sticker_id"?, "message_id"?}
                              or multipart with fields user, text, sticker (a file)
    POST /api/chat/forget     JSON {"user", "confirm": true}: /forget for the web chat
    GET  /api/stickers        the sticker library, for the picker
    GET  /stickers/{id}.png   a library sticker (also .webp)
    GET  /generated/{name}.png  a sticker PEGS generated or composed (gen / rag modes)
    GET  /healthz             liveness
    GET  /metrics             Prometheus metrics
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile

from bots.ratelimit import RateLimiter
from bots.texts import FORGET_DONE, files_phrase
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
USER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
GENERATED_NAME = re.compile(r"^[0-9a-f]{16,64}\.png$")  # content hashes (engine/pegs/reply.py)
# Status per MediaError code: what the person sent is too big, unknown, or broken.
MEDIA_STATUS = {"too_large": 413, "too_many_pixels": 413, "too_long": 413, "unsupported": 415}


class ChatError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


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
    if not GENERATED_NAME.match(name):
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
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    # Multipart overhead and the text field come on top of the file itself.
    max_body = settings.max_upload_bytes + settings.max_text_chars * 4 + 64 * 1024

    @app.exception_handler(ChatError)
    async def chat_error(_: Request, error: ChatError) -> JSONResponse:
        return error_response(error.status, error.code, error.message)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "stickers": len(library)}

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = metrics_text()
        return Response(body, media_type=content_type)

    @app.get("/")
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

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
        if not GENERATED_NAME.match(name) or not path.is_file():
            raise ChatError(404, "not_found", "No such sticker.")
        # Content-addressed: a name never changes what it shows.
        return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000"})

    @app.post("/api/chat/messages")
    async def post_message(request: Request) -> JSONResponse:
        received = time.perf_counter()
        declared = int(request.headers.get("content-length") or 0)
        if declared > max_body:
            raise ChatError(413, "too_large", too_large_message(settings.max_upload_bytes))
        fields, upload = await read_fields(request, settings)
        user = str(fields.get("user") or "").strip()
        if not USER_ID.match(user):
            raise ChatError(400, "bad_user", "Give a user id of 1-64 letters, digits or _.:@-")
        text = str(fields.get("text") or "")
        if len(text) > settings.max_text_chars:
            raise ChatError(413, "text_too_long",
                            f"Your message is too long: the limit is "
                            f"{settings.max_text_chars} characters.")
        message_id = str(fields.get("message_id") or uuid.uuid4().hex)
        if not MESSAGE_ID.match(message_id):
            raise ChatError(400, "bad_message_id", "message_id must be 1-80 plain characters.")
        media = []
        if fields.get("sticker_id"):
            media.append(library_media(library, str(fields["sticker_id"])))
        if upload is not None:
            media.append(await stored_upload(upload, limits, media_store))
        if not text.strip() and not media:
            raise ChatError(400, "empty", "Send some text or a sticker.")
        if not limiter.allow(user):
            wait = max(1, round(limiter.retry_after(user)))
            raise ChatError(429, "rate_limited",
                            f"You're sending messages very fast. Please wait {wait} s.")
        turn = UserTurn(platform="web", chat_id=user, user_id=user, message_id=message_id,
                        text=text, media=media)
        try:
            reply = await submitter.submit(turn)
        except Exception:
            log.exception("reply failed for turn %s", turn.task_id)
            raise ChatError(503, "reply_failed",
                            "Sorry, I couldn't answer just now. Please try again.") from None
        latency_ms = int((time.perf_counter() - received) * 1000)
        return JSONResponse(reply_json(library, reply, latency_ms))

    @app.post("/api/chat/forget")
    async def forget(request: Request) -> JSONResponse:
        """Delete everything stored about a web chat user (messages, memory, media), the
        same code path as Telegram's and Discord's /forget and the dashboard's."""
        fields, _ = await read_fields(request, settings)
        user = str(fields.get("user") or "").strip()
        if not USER_ID.match(user):
            raise ChatError(400, "bad_user", "Give a user id of 1-64 letters, digits or _.:@-")
        if fields.get("confirm") not in (True, "true", "yes", "1"):
            raise ChatError(400, "confirm", "Send \"confirm\": true to delete everything.")
        removed = await asyncio.to_thread(forget_person, transcript_store(), media_store,
                                          "web", user)
        log.info("forgot a web chat user and %d media files", removed)
        return JSONResponse({"forgotten": {"files": removed,
                                           "message": FORGET_DONE.format(
                                               files=files_phrase(removed))}})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def too_large_message(limit: int) -> str:
    return f"That file is too big: the limit is {limit / (1024 * 1024):.0f} MB."


async def read_fields(request: Request, settings: Settings) -> tuple[dict[str, Any], Any]:
    """The message fields, from JSON or multipart, and the uploaded file if any."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError, RecursionError):  # nested 100k deep, too
            raise ChatError(400, "bad_json", "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise ChatError(400, "bad_json", "Send a JSON object.")
        return body, None
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        try:
            form = await request.form(max_files=2, max_fields=10,
                                      max_part_size=settings.max_text_chars * 4 + 1024)
        except Exception as error:  # the multipart parser raises several kinds
            raise ChatError(400, "bad_form", f"The form could not be read: {error}") from None
        upload = form.get("sticker") or form.get("image")
        fields = {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
        return fields, upload if isinstance(upload, UploadFile) else None
    raise ChatError(415, "bad_content_type", "Send JSON or multipart/form-data.")


def library_media(library: StickerLibrary, sticker_id: str) -> Media:
    if sticker_id not in library:
        raise ChatError(400, "unknown_sticker", "That sticker is not in the library.")
    sticker = library.get(sticker_id)
    return Media(kind=MediaKind.sticker, path=str(library.png_file(sticker_id)), format="png",
                 emoji=sticker.emoji, set_name=sticker.pack, library_id=sticker_id)


async def stored_upload(upload: UploadFile, limits: MediaLimits, store: MediaStore) -> Media:
    """Check an uploaded picture fully (size, format, decodability), then store it."""
    data = await upload.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise ChatError(413, "too_large", too_large_message(limits.max_bytes))
    if not data:
        raise ChatError(400, "empty_file", "That file is empty.")
    try:
        decoded = await asyncio.to_thread(decode_bytes, data, limits, upload.filename)
    except MediaError as error:
        log.info("rejected upload %r: %s", upload.filename, error.code)
        raise ChatError(MEDIA_STATUS.get(error.code, 422), error.code,
                        error.user_message) from None
    path = await asyncio.to_thread(store.save, data, decoded.format)
    # The file name is not used: names like IMG_2034 say nothing about the feeling.
    return Media(kind=MediaKind.sticker, path=str(path), format=decoded.format)
