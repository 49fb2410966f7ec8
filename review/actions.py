"""What operators change: marks on replies, exports, a user's data deleted on request,
evaluation runs started. Every route here is a POST (CSRF-checked by review.web.operator)
except the confirmation page of a deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from review.params import EvaluationForm, Id, RowId, day_start
from review.web import context, render, root
from storage.db import Database
from storage.export import conversation_sessions, sessions_jsonl
from storage.forget import forget_person
from storage.media_store import MediaStore
from storage.models import Conversation, Message, ReviewMark, User
from storage.transcript import TranscriptStore

router = APIRouter()

KINDS = ("flag", "good", "bad")
MAX_NOTE_CHARS = 2000
MAX_EXPORT = 10_000


class ActionError(ValueError):
    pass


def mark_message(db: Database, message_id: int, operator_id: int, kind: str,
                 note: str = "") -> int:
    """An operator's judgement on a bot reply; returns its conversation id. A good or
    bad mark replaces the operator's earlier good/bad mark on it; flags accumulate."""
    if kind not in KINDS:
        raise ActionError(f"kind must be one of {', '.join(KINDS)}")
    with db.session() as s:
        message = s.get(Message, message_id)
        if message is None:
            raise LookupError(message_id)
        if message.role != "bot":
            raise ActionError("Only the bot's replies are marked.")
        if kind in ("good", "bad"):
            for old in s.query(ReviewMark).filter(
                    ReviewMark.message_id == message_id, ReviewMark.operator_id == operator_id,
                    ReviewMark.kind.in_(("good", "bad"))):
                s.delete(old)
        s.add(ReviewMark(message_id=message_id, operator_id=operator_id, kind=kind,
                         source="operator", note=note.strip()[:MAX_NOTE_CHARS]))
        return message.conversation_id


def delete_user_data(db: Database, transcripts: TranscriptStore, media_store: MediaStore,
                     user_row_id: int) -> int:
    """Everything stored about one person, as their own /forget would delete it
    (rows, memory cache, media files only they sent); returns media files removed."""
    with db.session() as s:
        user = s.get(User, user_row_id)
        if user is None:
            raise LookupError(user_row_id)
        platform, platform_user_id = user.platform, user.platform_user_id
    return forget_person(transcripts, media_store, platform, platform_user_id)


@router.post("/messages/{message_id}/mark")
async def mark(request: Request, message_id: RowId, kind: str = Form(...),
               note: str = Form("")) -> Response:
    ctx = context(request)
    try:
        conv_id = await run_in_threadpool(mark_message, ctx.db, message_id,
                                          request.state.operator.operator_id, kind, note)
    except LookupError:
        raise HTTPException(404) from None
    except ActionError as error:
        raise HTTPException(400, str(error)) from None
    return RedirectResponse(f"{root(request)}/conversations/{conv_id}?done=marked#m{message_id}",
                            status_code=303)


@router.post("/api/messages/{message_id}/marks")
async def mark_json(request: Request, message_id: RowId) -> Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"error": {"code": "bad_json", "message": "Send a JSON object."}},
                            status_code=400)
    try:
        conv_id = await run_in_threadpool(
            mark_message, context(request).db, message_id, request.state.operator.operator_id,
            str(body.get("kind", "")), str(body.get("note") or ""))
    except LookupError:
        return JSONResponse({"error": {"code": "not_found", "message": "No such message."}},
                            status_code=404)
    except ActionError as error:
        return JSONResponse({"error": {"code": "bad_mark", "message": str(error)}},
                            status_code=400)
    return JSONResponse({"ok": True, "conversation_id": conv_id})


@router.post("/export")
async def export(request: Request,
                 ids: Annotated[list[Id] | None, Form(max_length=MAX_EXPORT)] = None
                 ) -> Response:
    """The ticked conversations as one STICKERCONV JSONL download."""
    if not ids:
        raise HTTPException(400, "Tick at least one conversation to export.")
    sessions = await run_in_threadpool(lambda: list(conversation_sessions(context(request).db,
                                                                           ids)))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        sessions_jsonl(sessions), media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="stickerconv-{stamp}.jsonl"'})


@router.get("/users/{user_id}/delete")
async def delete_confirm(request: Request, user_id: RowId) -> Response:
    with context(request).db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            raise HTTPException(404)
        conversations = s.query(Conversation).filter(Conversation.user_id == user_id).count()
        messages = s.query(Message).join(Conversation).filter(
            Conversation.user_id == user_id).count()
    return render(request, "delete_user.html", user=user, conversations=conversations,
                  messages=messages, error="")


@router.post("/users/{user_id}/delete")
async def delete_user(request: Request, user_id: RowId, confirm: str = Form("")) -> Response:
    ctx = context(request)
    with ctx.db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            raise HTTPException(404)
    if confirm.strip() != user.platform_user_id:
        return render(request, "delete_user.html", 400, user=user, conversations=None,
                      messages=None, error="Type the user's id exactly to confirm.")
    await run_in_threadpool(delete_user_data, ctx.db, ctx.transcripts, ctx.media_store,
                            user_id)
    return RedirectResponse(f"{root(request)}/?done=deleted", status_code=303)


@router.post("/evaluations")
async def start_evaluation(request: Request,
                           form: Annotated[EvaluationForm, Form()]) -> Response:
    runs = context(request).runs
    try:
        await run_in_threadpool(lambda: runs.start(
            since=day_start(form.since), until=day_start(form.until, end=True),
            platform=form.platform, model_version=form.model_version,
            judge=form.judge == "on", judge_samples=form.judge_samples))
    except ValueError:
        return RedirectResponse(f"{root(request)}/evaluations?error=busy", status_code=303)
    return RedirectResponse(f"{root(request)}/evaluations?done=started", status_code=303)
