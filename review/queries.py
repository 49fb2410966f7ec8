"""What the dashboard reads: the filtered conversation list and one conversation.

The list pages by keyset on the conversation id (newest first): a page costs the same
on the first page and the thousandth, where OFFSET would scan every row before it.
Every filter is an EXISTS on the conversation's messages, served by the indexes on
messages (conversation, created_at), review_marks (message, kind) and
evaluation_scores (message_id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from storage.models import (
    Conversation,
    EvaluationScore,
    Message,
    Operator,
    ReviewMark,
    User,
)

PAGE_SIZE = 50
JUDGE_METRICS = ("judge.emp_txt", "judge.emp_mm", "judge.con")


@dataclass
class Filters:
    """The list's filters; None or empty means "any"."""

    q: str = ""  # words in any message
    platform: str = ""
    user: str = ""  # platform user id or display name (part of it)
    since: datetime | None = None  # a message at or after
    until: datetime | None = None  # a message before
    emotion: str = ""  # a user message of this detected emotion
    has_sticker: bool | None = None  # a sticker on either side (or none at all)
    flagged: bool | None = None  # an operator flag, a safety flag or a crisis label
    judge_min: float | None = None  # a reply with a judge score in [min, max]
    judge_max: float | None = None

    def active(self) -> bool:
        return any(v not in (None, "") for v in self.__dict__.values())


@dataclass
class ConversationRow:
    id: int
    platform: str
    chat_id: str
    user_id: int
    user: str
    display_name: str | None
    created_at: datetime
    last_at: datetime | None = None
    messages: int = 0
    flags: int = 0
    crisis: bool = False  # the written crisis reply was sent
    check_in: bool = False  # the bot asked whether they are thinking of hurting anyone
    first_text: str = ""


@dataclass
class Page:
    rows: list[ConversationRow]
    total: int
    newer: int | None  # pass as after= for the page before
    older: int | None  # pass as before= for the page after
    filters: Filters = field(default_factory=Filters)


def _in_conv(*conditions: Any) -> Any:
    return exists().where(Message.conversation_id == Conversation.id, *conditions)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filtered(stmt: Select[Any], f: Filters) -> Select[Any]:
    """`stmt` (over Conversation joined to User) narrowed by the filters."""
    if f.platform:
        stmt = stmt.where(Conversation.platform == f.platform)
    if f.user:
        pattern = _like(f.user.lower())
        stmt = stmt.where(or_(func.lower(User.platform_user_id).like(pattern, escape="\\"),
                              func.lower(User.display_name).like(pattern, escape="\\")))
    if f.q:
        stmt = stmt.where(_in_conv(func.lower(Message.text).like(_like(f.q.lower()),
                                                                 escape="\\")))
    if f.since is not None or f.until is not None:
        window = []
        if f.since is not None:
            window.append(Message.created_at >= f.since)
        if f.until is not None:
            window.append(Message.created_at < f.until)
        stmt = stmt.where(_in_conv(*window))
    if f.emotion:
        stmt = stmt.where(_in_conv(Message.role == "user", Message.user_emotion == f.emotion))
    if f.has_sticker is not None:
        sticker = _in_conv(or_(Message.sticker_id.is_not(None),
                               and_(Message.role == "user", Message.media.is_not(None))))
        stmt = stmt.where(sticker if f.has_sticker else ~sticker)
    if f.flagged is not None:
        flag = or_(_in_conv(Message.safety.is_not(None)),
                   exists().where(ReviewMark.message_id == Message.id,
                                  Message.conversation_id == Conversation.id,
                                  ReviewMark.kind == "flag"))
        stmt = stmt.where(flag if f.flagged else ~flag)
    if f.judge_min is not None or f.judge_max is not None:
        score = [EvaluationScore.message_id == Message.id,
                 Message.conversation_id == Conversation.id,
                 EvaluationScore.metric.in_(JUDGE_METRICS)]
        if f.judge_min is not None:
            score.append(EvaluationScore.value >= f.judge_min)
        if f.judge_max is not None:
            score.append(EvaluationScore.value <= f.judge_max)
        stmt = stmt.where(exists().where(*score))
    return stmt


def list_conversations(s: Session, f: Filters, *, before: int | None = None,
                       after: int | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of conversations, newest first, after the keyset cursor."""
    base = select(Conversation, User).join(User, User.id == Conversation.user_id)
    stmt = filtered(base, f)
    if after is not None:  # the page before: ascending from the cursor, then reversed
        stmt = stmt.where(Conversation.id > after).order_by(Conversation.id.asc())
    else:
        if before is not None:
            stmt = stmt.where(Conversation.id < before)
        stmt = stmt.order_by(Conversation.id.desc())
    found = s.execute(stmt.limit(size + 1)).all()
    more = len(found) > size
    found = found[:size]
    if after is not None:
        found.reverse()
    rows = [ConversationRow(id=c.id, platform=c.platform, chat_id=c.chat_id, user_id=u.id,
                            user=u.platform_user_id, display_name=u.display_name,
                            created_at=c.created_at) for c, u in found]
    _add_summaries(s, rows)
    total = s.execute(filtered(select(func.count(Conversation.id)).select_from(Conversation)
                               .join(User, User.id == Conversation.user_id), f)).scalar_one()
    if after is not None:
        newer = rows[0].id if rows and more else None
        older = rows[-1].id if rows else None
    else:
        newer = rows[0].id if rows and before is not None else None
        older = rows[-1].id if rows and more else None
    return Page(rows=rows, total=total, newer=newer, older=older, filters=f)


def _add_summaries(s: Session, rows: list[ConversationRow]) -> None:
    """Counts, last activity, flags and the opening words, for this page's rows only."""
    if not rows:
        return
    by_id = {r.id: r for r in rows}
    ids = list(by_id)
    check_ins = Message.safety.like("check_in%")
    for conv_id, count, last_at, crisis, asked in s.execute(
            select(Message.conversation_id, func.count(Message.id), func.max(Message.created_at),
                   func.count(case((Message.safety.is_not(None) & ~check_ins, 1))),
                   func.count(case((check_ins, 1))))
            .where(Message.conversation_id.in_(ids)).group_by(Message.conversation_id)):
        row = by_id[conv_id]
        row.messages, row.crisis, row.check_in = count, crisis > 0, asked > 0
        row.last_at = _aware(last_at)
    for conv_id, flags in s.execute(
            select(Message.conversation_id, func.count(ReviewMark.id))
            .join(ReviewMark, ReviewMark.message_id == Message.id)
            .where(Message.conversation_id.in_(ids), ReviewMark.kind == "flag")
            .group_by(Message.conversation_id)):
        by_id[conv_id].flags = flags
    first = (select(Message.conversation_id, func.min(Message.id).label("mid"))
             .where(Message.conversation_id.in_(ids), Message.role == "user")
             .group_by(Message.conversation_id).subquery())
    for conv_id, text in s.execute(select(first.c.conversation_id, Message.text)
                                   .join(Message, Message.id == first.c.mid)):
        by_id[conv_id].first_text = (text or "")[:140]


def _aware(value: Any) -> Any:
    """func.max() skips the column type on SQLite: strings and naive values come back."""
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


@dataclass
class MessageView:
    message: Message
    marks: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class ConversationView:
    conversation: Conversation
    user: User
    messages: list[MessageView]


def conversation_view(s: Session, conversation_id: int) -> ConversationView | None:
    """The conversation with every message, its marks and its per-reply judge scores
    (the latest run's value of each metric)."""
    found = s.execute(select(Conversation, User).join(User, User.id == Conversation.user_id)
                      .where(Conversation.id == conversation_id)).first()
    if found is None:
        return None
    conv, user = found
    messages = s.execute(select(Message).where(Message.conversation_id == conv.id)
                         .order_by(Message.created_at, Message.id)).scalars().all()
    views = {m.id: MessageView(m) for m in messages}
    ids = list(views)
    if ids:
        for mark, username in s.execute(
                select(ReviewMark, Operator.username)
                .outerjoin(Operator, Operator.id == ReviewMark.operator_id)
                .where(ReviewMark.message_id.in_(ids)).order_by(ReviewMark.id)):
            views[mark.message_id].marks.append({
                "kind": mark.kind, "source": mark.source, "note": mark.note,
                "by": username or mark.source, "at": mark.created_at})
        for score in s.execute(select(EvaluationScore).where(
                EvaluationScore.message_id.in_(ids)).order_by(EvaluationScore.id)).scalars():
            views[score.message_id].scores[score.metric] = score.value  # type: ignore[index]
    return ConversationView(conv, user, list(views.values()))


def platforms(s: Session) -> list[str]:
    return list(s.execute(select(Conversation.platform).distinct()
                          .order_by(Conversation.platform)).scalars())
