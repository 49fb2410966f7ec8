"""The conversation list's filters and keyset pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from review.queries import Filters, conversation_view, list_conversations
from storage.media_store import MediaStore
from storage.models import Conversation, Message, ReviewMark, User
from tests.review.conftest import SCRIPT_TEXT, seed


def ids(db, f: Filters, **kw) -> list[int]:
    with db.session() as s:
        return [r.id for r in list_conversations(s, f, **kw).rows]


def test_each_filter_narrows_the_list(database, review_library, tmp_path) -> None:
    now = datetime.now(UTC)
    sd = seed(database, review_library, MediaStore(tmp_path / "media"), now=now)
    everyone = [sd.carol_conv, sd.bob_conv, sd.alice_conv]
    assert ids(database, Filters()) == everyone  # newest first
    assert ids(database, Filters(platform="telegram")) == [sd.bob_conv]
    assert ids(database, Filters(user="ALI")) == [sd.alice_conv]  # id or name, any case
    assert ids(database, Filters(user="carol")) == [sd.carol_conv]
    assert ids(database, Filters(q="exam")) == [sd.alice_conv]
    assert ids(database, Filters(q="100%")) == []  # LIKE wildcards are literal
    assert ids(database, Filters(q="<script>")) == [sd.bob_conv]
    assert ids(database, Filters(since=now - timedelta(hours=3))) == [sd.carol_conv]
    assert ids(database, Filters(until=now - timedelta(days=1, hours=12))) == [sd.alice_conv]
    assert ids(database, Filters(since=now - timedelta(days=1, hours=1),
                                 until=now - timedelta(hours=12))) == [sd.bob_conv]
    assert ids(database, Filters(emotion="anger")) == [sd.carol_conv]
    assert ids(database, Filters(emotion="sadness")) == [sd.bob_conv]  # user's, not planned
    assert ids(database, Filters(has_sticker=True)) == [sd.bob_conv, sd.alice_conv]
    assert ids(database, Filters(has_sticker=False)) == [sd.carol_conv]
    assert ids(database, Filters(flagged=True)) == [sd.bob_conv]  # the safety flag
    assert ids(database, Filters(flagged=False)) == [sd.carol_conv, sd.alice_conv]
    with database.session() as s:  # an operator's flag counts too
        s.add(ReviewMark(message_id=sd.alice_bot, kind="flag", note="too cheerful"))
    assert ids(database, Filters(flagged=True)) == [sd.bob_conv, sd.alice_conv]
    assert ids(database, Filters(judge_min=4.5)) == [sd.alice_conv]
    assert ids(database, Filters(judge_max=3.9)) == [sd.alice_conv]
    assert ids(database, Filters(judge_min=4.7)) == []
    assert ids(database, Filters(platform="web", has_sticker=True, judge_min=1)) == [
        sd.alice_conv]


def test_rows_summarise_their_conversation(database, review_library, tmp_path) -> None:
    sd = seed(database, review_library, MediaStore(tmp_path / "media"))
    with database.session() as s:
        page = list_conversations(s, Filters())
        view = conversation_view(s, sd.bob_conv)
    rows = {r.id: r for r in page.rows}
    assert page.total == 3 and page.newer is None and page.older is None
    assert rows[sd.alice_conv].messages == 4 and rows[sd.alice_conv].user == "alice"
    assert rows[sd.bob_conv].crisis and not rows[sd.alice_conv].crisis
    assert rows[sd.bob_conv].flags == 1 and rows[sd.bob_conv].first_text == SCRIPT_TEXT[:140]
    assert rows[sd.alice_conv].last_at.tzinfo is not None
    assert [m.message.role for m in view.messages] == ["user", "bot"]
    assert view.messages[1].marks[0]["source"] == "safety"
    with database.session() as s:
        alice = conversation_view(s, sd.alice_conv)
    assert alice.messages[1].scores == {"judge.emp_txt": 4.2, "judge.emp_mm": 3.8,
                                        "judge.con": 4.6}


def test_check_ins_and_crisis_replies_are_told_apart(database, review_library,
                                                      tmp_path) -> None:
    sd = seed(database, review_library, MediaStore(tmp_path / "media"))
    with database.session() as s:
        s.execute(Message.__table__.update().where(Message.conversation_id == sd.carol_conv)
                  .values(safety="check_in_self"))
    with database.session() as s:
        rows = {r.id: r for r in list_conversations(s, Filters()).rows}
        flagged = ids(database, Filters(flagged=True))
    assert rows[sd.carol_conv].check_in and not rows[sd.carol_conv].crisis
    assert rows[sd.bob_conv].crisis and not rows[sd.bob_conv].check_in
    assert sd.carol_conv in flagged


def test_keyset_pages_walk_five_thousand_conversations(database) -> None:
    """Every conversation exactly once, newest first, in both directions; a late page
    costs what the first does."""
    n = 5000
    now = datetime.now(UTC)
    with database.session() as s:
        s.execute(insert(User), [{"platform": "web" if i % 2 else "telegram",
                                  "platform_user_id": f"u{i}", "active": True,
                                  "stickers_enabled": True, "created_at": now}
                                 for i in range(n)])
        users = list(s.execute(select(User.id).order_by(User.id)).scalars())
        s.execute(insert(Conversation), [{"platform": "web" if i % 2 else "telegram",
                                          "chat_id": f"c{i}", "user_id": uid,
                                          "created_at": now}
                                         for i, uid in enumerate(users)])
        convs = list(s.execute(select(Conversation.id).order_by(Conversation.id)).scalars())
        s.execute(insert(Message), [{"conversation_id": c, "role": "user",
                                     "platform_message_id": "1", "text": f"hello {i}",
                                     "user_emotion": "happiness" if i % 10 == 0 else "neutral",
                                     "created_at": now - timedelta(minutes=i)}
                                    for i, c in enumerate(convs)])
    seen, before, timings = [], None, []
    while True:
        started = time.perf_counter()
        with database.session() as s:
            page = list_conversations(s, Filters(), before=before)
        timings.append(time.perf_counter() - started)
        assert page.total == n and len(page.rows) <= 50
        seen.extend(r.id for r in page.rows)
        if page.older is None:
            break
        before = page.older
    assert seen == sorted(convs, reverse=True)
    assert len(timings) == n // 50
    # Medians: one late page that waited on the disk or a collector says nothing of paging.
    late, early = sorted(timings[-10:])[5], sorted(timings[:10])[5]
    assert late < max(0.5, 5 * early), timings
    # Back towards the newest from the last page.
    back, after = [], page.newer
    while after is not None:
        with database.session() as s:
            previous = list_conversations(s, Filters(), after=after)
        back = [r.id for r in previous.rows] + back
        after = previous.newer
    assert back + [r.id for r in page.rows] == seen
    # Filters page too.
    happy, before = [], None
    while True:
        with database.session() as s:
            page = list_conversations(s, Filters(emotion="happiness", platform="telegram"),
                                      before=before)
        happy.extend(r.id for r in page.rows)
        if page.older is None:
            break
        before = page.older
    assert page.total == len(happy) == n // 10
