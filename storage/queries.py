"""Small query helpers shared by the transcript store and SQL memory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import Conversation, Message, User, utcnow


def insert_ignore(session: Session, table: Table, values: dict[str, Any],
                  conflict_columns: list[str]) -> int | None:
    """INSERT a row unless a unique key already holds it; returns the new id or None.

    The database decides, so two racing writers cannot both win: on PostgreSQL the
    loser's INSERT waits for the winner's commit and then does nothing.
    """
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (insert(table).values(**values)
                .on_conflict_do_nothing(index_elements=conflict_columns)
                .returning(table.c.id))
        return session.execute(stmt).scalar_one_or_none()
    # Other backends: a savepoint keeps the outer transaction usable after the conflict.
    try:
        with session.begin_nested():
            return session.execute(table.insert().values(**values)
                                   .returning(table.c.id)).scalar_one()
    except IntegrityError:
        return None


def user_id_of(session: Session, platform: str, platform_user_id: str) -> int | None:
    return session.execute(
        select(User.id).where(User.platform == platform,
                              User.platform_user_id == platform_user_id)
    ).scalar_one_or_none()


def ensure_user(session: Session, platform: str, platform_user_id: str,
                display_name: str | None = None) -> int:
    """The users.id for this platform account, created on first sight."""
    found = user_id_of(session, platform, platform_user_id)
    if found is not None:
        if display_name:
            user = session.get(User, found)
            if user is not None and user.display_name != display_name:
                user.display_name = display_name
        return found
    new_id = insert_ignore(session, User.__table__,  # type: ignore[arg-type]
                           {"platform": platform, "platform_user_id": platform_user_id,
                            "display_name": display_name, "active": True,
                            "stickers_enabled": True, "created_at": utcnow()},
                           ["platform", "platform_user_id"])
    if new_id is not None:
        return new_id
    found = user_id_of(session, platform, platform_user_id)  # a concurrent writer won
    assert found is not None
    return found


def conversation_of(session: Session, platform: str, chat_id: str,
                    platform_user_id: str) -> Conversation | None:
    return session.execute(
        select(Conversation).join(User, User.id == Conversation.user_id)
        .where(Conversation.platform == platform, Conversation.chat_id == chat_id,
               User.platform == platform, User.platform_user_id == platform_user_id)
    ).scalar_one_or_none()


def ensure_conversation(session: Session, platform: str, chat_id: str, user_id: int) -> int:
    key = (Conversation.platform == platform, Conversation.chat_id == chat_id,
           Conversation.user_id == user_id)
    found = session.execute(select(Conversation.id).where(*key)).scalar_one_or_none()
    if found is not None:
        return found
    new_id = insert_ignore(session, Conversation.__table__,  # type: ignore[arg-type]
                           {"platform": platform, "chat_id": chat_id, "user_id": user_id,
                            "created_at": utcnow(), "reset_at": None},
                           ["platform", "chat_id", "user_id"])
    if new_id is not None:
        return new_id
    found = session.execute(select(Conversation.id).where(*key)).scalar_one_or_none()
    assert found is not None
    return found


def reset(session: Session, platform: str, chat_id: str, platform_user_id: str,
          at: datetime | None = None) -> None:
    """Mark the conversation as starting afresh now; its rows stay for review."""
    conv = conversation_of(session, platform, chat_id, platform_user_id)
    if conv is not None:
        conv.reset_at = at or utcnow()


def since_reset(stmt: Select[Any], conv: Conversation) -> Select[Any]:
    """Restrict a messages query to one conversation after its last /reset."""
    stmt = stmt.where(Message.conversation_id == conv.id)
    if conv.reset_at is not None:
        stmt = stmt.where(Message.created_at > conv.reset_at)
    return stmt
