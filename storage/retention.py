"""The retention period: conversations older than N days are purged, with their files.

`purge_older_than` deletes messages (and their review marks and scores, by cascade) and
deliveries created before the cutoff, then conversations left empty and people left with
nothing stored, then media files no remaining row refers to. `purge_orphan_media`
alone removes files nothing refers to any more (a forgotten person's generated
stickers, a file saved for a turn that never got recorded). Files younger than a grace
period are left alone: an adapter stores a file a moment before its turn is recorded
(storing it again refreshes its time), and the web chat also leases it until then
(storage/media_store.py).

`stickerbot purge` runs it once; `stickerbot serve` (and review, telegram, discord)
runs it every STICKERBOT_PURGE_INTERVAL_S when STICKERBOT_RETENTION_DAYS is above 0.
The Redis memory cache needs no purge: its keys expire (STICKERBOT_MEMORY_TTL_S).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, delete, exists, or_, select

from storage.db import Database
from storage.media_store import MediaStore
from storage.models import Conversation, Delivery, Message, User, utcnow
from storage.transcript import media_paths

log = logging.getLogger(__name__)

GRACE_S = 3600.0


@dataclass
class PurgeReport:
    messages: int = 0
    deliveries: int = 0
    conversations: int = 0
    users: int = 0
    files: int = 0


def referenced_files(db: Database) -> set[Path]:
    """Every file a stored row points at: media people sent, generated stickers sent."""
    found: set[str] = set()
    with db.session() as s:
        for media in s.execute(select(Message.media).where(Message.media.is_not(None))
                               .execution_options(yield_per=500)).scalars():
            found.update(media_paths(media))
        for meta in s.execute(select(Message.sticker_meta).where(
                Message.sticker_meta.is_not(None)).execution_options(yield_per=500)).scalars():
            if isinstance(meta, dict) and meta.get("image_path"):
                found.add(str(meta["image_path"]))
        for turn, payload in s.execute(select(Delivery.turn, Delivery.payload)):
            if isinstance(turn, dict):
                found.update(media_paths(turn.get("media")))
            if isinstance(payload, dict) and payload.get("sticker_path"):
                found.add(str(payload["sticker_path"]))
    resolved = set()
    for path in found:
        try:
            resolved.add(Path(path).resolve())
        except (OSError, RuntimeError):
            continue
    return resolved


def purge_orphan_media(db: Database, media_store: MediaStore, grace_s: float = GRACE_S,
                       now: float | None = None) -> int:
    """Delete files under the media store (generated stickers included) that no row
    refers to and that are older than `grace_s`; returns how many were deleted."""
    keep = referenced_files(db)
    cutoff = (time.time() if now is None else now) - grace_s
    orphans = []
    for path in media_store.root.rglob("*"):
        try:
            if (not path.is_file() or path.stat().st_mtime > cutoff
                    or media_store.is_live_lease(path)):
                continue
        except OSError:
            continue
        if path.resolve() not in keep:
            orphans.append(path)
    removed = media_store.delete(orphans) if orphans else 0
    if removed:
        log.info("retention: deleted %d media files nothing refers to", removed)
    return removed


def purge_older_than(db: Database, media_store: MediaStore, cutoff: datetime,
                     grace_s: float = GRACE_S) -> PurgeReport:
    """Delete everything stored before `cutoff` (see the module docstring)."""
    report = PurgeReport()
    with db.session() as s:
        old_user_rows = select(Message.id).where(Message.role == "user",
                                                 Message.created_at < cutoff)
        # Bot rows first: they point at the user rows through reply_to.
        report.messages += s.execute(delete(Message).where(
            Message.role == "bot",
            or_(Message.created_at < cutoff, Message.reply_to.in_(old_user_rows)))).rowcount
        report.messages += s.execute(delete(Message).where(
            Message.created_at < cutoff)).rowcount
        report.deliveries = s.execute(delete(Delivery).where(
            Delivery.created_at < cutoff)).rowcount
        has_messages = exists().where(Message.conversation_id == Conversation.id)
        report.conversations = s.execute(delete(Conversation).where(
            Conversation.created_at < cutoff, ~has_messages)).rowcount
        has_conversation = exists().where(Conversation.user_id == User.id)
        has_delivery = exists().where(Delivery.user_id == User.id)
        report.users = s.execute(delete(User).where(and_(
            User.created_at < cutoff, ~has_conversation, ~has_delivery))).rowcount
    report.files = purge_orphan_media(db, media_store, grace_s)
    return report


def purge_days(db: Database, media_store: MediaStore, days: int) -> PurgeReport:
    """Purge what is older than `days` days; with 0, only files nothing refers to."""
    if days <= 0:
        return PurgeReport(files=purge_orphan_media(db, media_store))
    report = purge_older_than(db, media_store, utcnow() - timedelta(days=days))
    log.info("retention (%d days): deleted %d messages, %d deliveries, %d conversations, "
             "%d users, %d files", days, report.messages, report.deliveries,
             report.conversations, report.users, report.files)
    return report


async def run_purge_loop(db: Database, media_store: MediaStore, days: int,
                         every_s: float) -> None:
    """Purge now and then every `every_s` seconds, until cancelled; errors are logged."""
    while True:
        try:
            await asyncio.to_thread(purge_days, db, media_store, days)
        except Exception as error:  # a database away for a while: try again next round
            log.error("retention purge failed: %s", type(error).__name__)
        await asyncio.sleep(every_s)
