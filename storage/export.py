"""Logged conversations as STICKERCONV sessions, the format training reads.

One record per conversation: {"conversation": [{"turn", "user_message",
"system_message", "user_sticker", "system_sticker"}], "user_persona", "user_status"},
each sticker null or {"image", "description", "emotion", "recommendation",
"origin_anno"}, as training/simulator/format.py writes them: a library sticker's
"image" is its PNG path relative to the library (`<pack>/<id>.png`, the id is its stem).
A person's own picture names its file in the media store and the emotion read from it;
a generated sticker names its image file. Extra top-level keys (readers ignore them):
"session_id", "platform", "model_versions" and "review_marks" (operators' flags and
good/bad marks by turn, so training can leave bad replies out).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select

from storage.db import Database
from storage.models import Conversation, Message, ReviewMark, Sticker


def _library_object(row: Sticker) -> dict[str, str]:
    return {"image": row.png_path or f"{row.pack}/{row.id}.png",
            "description": row.content_description, "emotion": row.emotion,
            "recommendation": row.recommendation, "origin_anno": row.emotion_description}


def _user_sticker(msg: Message, stickers: dict[str, Sticker]) -> dict[str, str] | None:
    for item in msg.media or []:
        if not isinstance(item, dict) or not item.get("path"):
            continue
        library_id = item.get("library_id")
        if library_id and library_id in stickers:
            return _library_object(stickers[library_id])
        return {"image": str(item["path"]),
                "description": str(item.get("caption") or item.get("set_name") or
                                   item.get("emoji") or ""),
                "emotion": msg.user_emotion or "neutral", "recommendation": "",
                "origin_anno": ""}
    return None


def _bot_sticker(msg: Message, stickers: dict[str, Sticker]) -> dict[str, str] | None:
    if not msg.sticker_id:
        return None
    if msg.sticker_id in stickers:
        return _library_object(stickers[msg.sticker_id])
    meta = msg.sticker_meta or {}
    return {"image": str(meta.get("image_path") or msg.sticker_id),
            "description": str(meta.get("description") or ""),
            "emotion": str(meta.get("emotion") or msg.planned_emotion or "neutral"),
            "recommendation": "", "origin_anno": ""}


def conversation_sessions(db: Database,
                          conversation_ids: Iterable[int]) -> Iterator[dict[str, Any]]:
    """STICKERCONV records of the given conversations (unknown ids are skipped).

    Each user message is a turn with the bot reply that answered it (its reply_to);
    a reply with no user message (none is logged so today) gets a turn of its own.
    """
    ids = sorted(set(conversation_ids))
    with db.session() as s:
        for conv_id in ids:
            conv = s.get(Conversation, conv_id)
            if conv is None:
                continue
            messages = s.execute(select(Message).where(Message.conversation_id == conv_id)
                                 .order_by(Message.created_at, Message.id)).scalars().all()
            wanted = {m.sticker_id for m in messages if m.sticker_id} | {
                item.get("library_id") for m in messages for item in (m.media or [])
                if isinstance(item, dict) and item.get("library_id")}
            stickers = {row.id: row for row in s.execute(
                select(Sticker).where(Sticker.id.in_(wanted))).scalars()} if wanted else {}
            replies = {m.reply_to: m for m in messages if m.role == "bot" and m.reply_to}
            answered = {r.id for r in replies.values()}
            turn_of: dict[int, int] = {}
            turns: list[dict[str, Any]] = []
            for msg in messages:
                if msg.role == "bot" and msg.id in answered:
                    continue
                user = msg if msg.role == "user" else None
                bot = replies.get(msg.id) if user else msg
                turns.append({
                    "turn": len(turns) + 1,
                    "user_message": user.text if user else "",
                    "system_message": bot.text if bot else "",
                    "user_sticker": _user_sticker(user, stickers) if user else None,
                    "system_sticker": _bot_sticker(bot, stickers) if bot else None,
                })
                for m in (user, bot):
                    if m is not None:
                        turn_of[m.id] = len(turns)
            marks = [{"turn": turn_of[mark.message_id], "kind": mark.kind,
                      "source": mark.source, "note": mark.note}
                     for mark in s.execute(select(ReviewMark).where(
                         ReviewMark.message_id.in_(list(turn_of))).order_by(ReviewMark.id)
                     ).scalars()] if turn_of else []
            yield {
                "conversation": turns, "user_persona": "", "user_status": "",
                "session_id": f"{conv.platform}:{conv.id}", "platform": conv.platform,
                "model_versions": sorted({m.model_version for m in messages
                                          if m.role == "bot" and m.model_version}),
                "review_marks": marks,
            }


def sessions_jsonl(sessions: Iterable[dict[str, Any]]) -> Iterator[str]:
    for session in sessions:
        yield json.dumps(session, ensure_ascii=False) + "\n"
