"""The web chat under attack (issue 21): bodies over the limit however they are sent, an
identity the server issues, cross-origin writes, floods from one address, two files in
one upload, odd code points, and a picture one person sends while another forgets.
A fake submitter stands in for the model: these are the web layer's guarantees."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from bots.web.app import create_app
from bots.web.replies import generated_json
from engine.stickers import StickerLibrary
from engine.types import Emotion, Media, MediaKind, Reply, StickerChoice, UserTurn
from settings import Settings
from storage.forget import forget_person
from storage.media_store import MediaStore
from storage.retention import purge_orphan_media
from storage.transcript import TranscriptStore
from tests.bots.web_helpers import WEB_SECRET, HeldSubmitter, bearer, start_in_thread
from tests.engine import media_samples as samples
from tests.serve_process import free_port

EVIL = "http://evil.example"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, web_secret=WEB_SECRET, max_upload_bytes=100_000,
                    max_text_chars=500, rate_limit_burst=50, rate_limit_per_minute=600)


@pytest.fixture
def transcripts(sqlite_database) -> TranscriptStore:
    return TranscriptStore(sqlite_database)


def make_app(settings: Settings, submitter, transcripts: TranscriptStore):
    return create_app(settings, submitter, StickerLibrary(settings.stickers_dir),
                      transcripts=transcripts)


@pytest.fixture
def client(settings, transcripts):
    with TestClient(make_app(settings, HeldSubmitter(transcripts), transcripts)) as test_client:
        yield test_client


def say(client, settings, user: str, text: str = "hello", **kwargs) -> httpx.Response:
    # "user" in the body as well: what a client of the old API sent; it must match.
    return client.post("/api/chat/messages", json={"user": user, "text": text},
                       headers={**bearer(user), **kwargs.pop("headers", {})},
                       **kwargs)


def record(transcripts: TranscriptStore, user: str, text: str, media: list[Media]) -> None:
    turn = UserTurn(platform="web", chat_id=user, user_id=user, message_id="m1", text=text,
                    media=media)
    transcripts.record_exchange(turn, None, Reply(
        text="ok", user_emotion=Emotion.neutral, user_valence=0.0,
        planned_emotion=Emotion.neutral))


def stored_texts(transcripts: TranscriptStore) -> list[str]:
    from sqlalchemy import text

    with transcripts.db.session() as s:
        return [row[0] for row in s.execute(text("SELECT text FROM messages WHERE role='user'"))]


# --- 1. bodies without a Content-Length ------------------------------------------------

def chunks(total: int, size: int = 64 * 1024):
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_a_chunked_json_body_over_the_limit_is_refused(client, settings) -> None:
    def body():
        yield b'{"user": "ann", "text": "hi", "pad": "'
        yield from (b"x" * 65536 for _ in range(200))  # 13 MB, no Content-Length
        yield b'"}'

    response = client.post("/api/chat/messages", content=body(),
                           headers={"content-type": "application/json",
                                    **bearer("ann")})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_a_declared_length_over_the_limit_is_refused_before_reading(client, settings) -> None:
    response = client.post("/api/chat/messages", content=b"{}",
                           headers={"content-type": "application/json",
                                    "content-length": "999999999", **bearer("ann")})
    assert response.status_code == 413


def stream_until_answered(port: int, path: str, content_type: str, limit: int,
                          extra: bytes = b"", first: bytes = b"") -> tuple[int, bytes]:
    """Send a chunked body of 20 x `limit` bytes over a raw socket, stopping as soon as
    the server answers; returns how much was sent and the first bytes of the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"
                 .encode() + extra + b"\r\n")
    if first:
        sock.sendall(b"%x\r\n" % len(first) + first + b"\r\n")
    sent, block = 0, b"a" * 65536
    sock.setblocking(False)
    answer = b""
    try:
        while sent < 20 * limit:
            time.sleep(0.001)  # the server runs in a thread of this process: let it read
            try:
                answer = sock.recv(4096)
                if answer:
                    break
            except BlockingIOError:
                pass
            try:
                sock.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
                sent += len(block)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)
        if not answer:
            sock.setblocking(True)
            sock.sendall(b"0\r\n\r\n")
            answer = sock.recv(4096)
    finally:
        sock.close()
    return sent, answer


@pytest.fixture
def live_server(settings, transcripts):
    from fastapi import FastAPI

    from review.app import create_review_app

    settings = settings.model_copy(update={"max_upload_bytes": 5 * 1024 * 1024})
    app = make_app(settings, HeldSubmitter(transcripts), transcripts)
    review: FastAPI = create_review_app(settings, StickerLibrary(settings.stickers_dir),
                                        db=transcripts.db, transcripts=transcripts,
                                        bertscore=False)
    app.mount("/review", review)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = start_in_thread(server)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("path, content_type", [
    ("/api/chat/messages", "application/json"),
    ("/api/chat/messages", "multipart/form-data; boundary=xyz"),
    ("/review/login", "application/x-www-form-urlencoded"),
])
def test_streamed_bodies_are_cut_off_at_the_limit(live_server, settings, path,
                                                  content_type) -> None:
    limit = 5 * 1024 * 1024 + settings.max_text_chars * 4 + 64 * 1024  # live_server's
    prefix = b""
    if content_type.startswith("multipart"):
        prefix = (b'--xyz\r\nContent-Disposition: form-data; name="sticker"; '
                  b'filename="a.png"\r\nContent-Type: image/png\r\n\r\n')
    token = bearer("ann")["Authorization"].encode()
    sent, answer = stream_until_answered(live_server, path, content_type, limit,
                                         b"Authorization: " + token + b"\r\n", prefix)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 4 * limit, f"the server read {sent} bytes before refusing"


def test_the_review_login_takes_no_large_body(live_server) -> None:
    response = httpx.post(f"http://127.0.0.1:{live_server}/review/login",
                          data={"username": "x" * 2_000_000, "password": "y"})
    assert response.status_code == 413


# --- 2. identity and cross-origin writes ----------------------------------------------

def test_the_page_issues_a_signed_httponly_cookie_that_the_api_accepts(client) -> None:
    page = client.get("/")
    cookie = page.headers["set-cookie"]
    assert "stickerbot_chat=" in cookie and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    reply = client.post("/api/chat/messages", json={"text": "hi"})
    assert reply.status_code == 200, reply.text
    again = client.get("/")
    assert "set-cookie" not in again.headers  # the same person keeps their identity


def test_a_token_from_the_session_endpoint_works_and_a_forged_one_does_not(client) -> None:
    session = client.post("/api/chat/session").json()
    assert session["user"].startswith("web-")
    ok = client.post("/api/chat/messages", json={"text": "hi"},
                     headers={"Authorization": f"Bearer {session['token']}"})
    assert ok.status_code == 200
    forged = session["token"].rsplit(".", 1)[0] + ".AAAA"
    client.cookies.clear()
    refused = client.post("/api/chat/messages", json={"text": "hi"},
                          headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401
    assert client.post("/api/chat/messages", json={"text": "hi"}).status_code == 401


def test_nobody_can_speak_or_forget_as_someone_else(client, settings, transcripts) -> None:
    assert say(client, settings, "victim", "my secret diary").status_code == 200
    client.cookies.clear()
    # Another site's form: url-encoded, the victim's id, no token.
    forged = client.post("/api/chat/messages", data={"user": "victim", "text": "as you"},
                         headers={"Origin": EVIL})
    assert forged.status_code in (401, 403, 415)
    attacker = bearer("mallory")
    claimed = client.post("/api/chat/messages", json={"user": "victim", "text": "as you"},
                          headers=attacker)
    assert claimed.status_code == 400 and claimed.json()["error"]["code"] == "bad_user"
    for headers in ({"Origin": EVIL}, {"Origin": EVIL, **bearer("victim")},
                    attacker):
        forget = client.post("/api/chat/forget", json={"user": "victim", "confirm": True},
                             headers=headers)
        assert forget.status_code in (400, 401, 403), forget.text
    assert stored_texts(transcripts) == ["my secret diary"]


def test_cross_origin_writes_are_refused_even_with_the_cookie(client) -> None:
    client.get("/")
    for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        response = client.post("/api/chat/messages", json={"text": "hi"}, headers=headers)
        assert response.status_code == 403, headers
        assert response.json()["error"]["code"] == "cross_origin"
    same = client.post("/api/chat/messages", json={"text": "hi"},
                       headers={"Origin": "http://testserver"})
    assert same.status_code == 200


def test_url_encoded_forms_are_not_accepted(client) -> None:
    client.get("/")
    response = client.post("/api/chat/messages", data={"text": "hi"})
    assert response.status_code == 415


def test_forget_deletes_the_callers_own_data(client, settings, transcripts) -> None:
    say(client, settings, "ann", "mine")
    say(client, settings, "bo", "theirs")
    done = client.post("/api/chat/forget", json={"confirm": True}, headers=bearer("ann"))
    assert done.status_code == 200, done.text
    assert stored_texts(transcripts) == ["theirs"]


# --- 3. floods from one address -------------------------------------------------------

async def parallel(app, settings, users: list[str], address: str = "10.0.0.1",
                   submitter: HeldSubmitter | None = None) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, client=(address, 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://chat.test") as c:
        tasks = [asyncio.create_task(c.post("/api/chat/messages",
                                            json={"user": u, "text": "spam"},
                                            headers=bearer(u))) for u in users]
        await asyncio.sleep(0.5)
        early = [t.result() for t in tasks if t.done()]
        if submitter is not None:
            submitter.release.set()
        rest = await asyncio.gather(*[t for t in tasks if not t.done()])
        return early + list(rest)


def test_one_address_cannot_queue_many_turns_under_invented_ids(settings, transcripts) -> None:
    submitter = HeldSubmitter(transcripts, held=True)
    app = make_app(settings, submitter, transcripts)
    responses = asyncio.run(parallel(app, settings, [f"id{i}" for i in range(6)],
                                     submitter=submitter))
    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) == 6 - settings.max_waiting_per_address
    assert all(int(r.headers["retry-after"]) > 0 for r in refused)
    assert "wait" in refused[0].json()["error"]["message"]
    assert sum(r.status_code == 200 for r in responses) == settings.max_waiting_per_address


def test_one_address_is_rate_limited_across_ids(settings, transcripts) -> None:
    strict = settings.model_copy(update={"address_rate_limit_burst": 3,
                                         "address_rate_limit_per_minute": 1})
    with TestClient(make_app(strict, HeldSubmitter(transcripts), transcripts)) as client:
        codes = [say(client, strict, f"u{i}").status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_a_full_queue_is_a_503_with_retry_after(settings, transcripts) -> None:
    small = settings.model_copy(update={"max_waiting_turns": 2})
    submitter = HeldSubmitter(transcripts, held=True)
    app = make_app(small, submitter, transcripts)

    async def scenario() -> list[httpx.Response]:
        first = asyncio.create_task(parallel(app, small, ["a1", "a2"], "10.0.0.1"))
        await asyncio.sleep(0.2)
        second = await parallel(app, small, ["b1"], "10.0.0.2")
        submitter.release.set()
        return (await first) + second

    responses = asyncio.run(scenario())
    assert sorted(r.status_code for r in responses) == [200, 200, 503]
    busy = next(r for r in responses if r.status_code == 503)
    assert int(busy.headers["retry-after"]) > 0 and busy.json()["error"]["message"]


# --- 6, 7, 9 ---------------------------------------------------------------------------

def test_a_lone_surrogate_is_replaced_at_the_edge(client, settings, transcripts) -> None:
    turn = UserTurn(platform="web", chat_id="c", user_id="u", message_id="1",
                    text="hi \ud800 there", media=[Media(kind=MediaKind.sticker, path="/x",
                                                         format="png", caption="\udfff")])
    assert turn.text.encode("utf-8") and turn.media[0].caption.encode("utf-8")
    response = client.post("/api/chat/messages", content=b'{"text": "hi \\ud800"}',
                           headers={"content-type": "application/json",
                                    **bearer("ann")})
    assert response.status_code == 200, response.text
    assert stored_texts(transcripts) == ["hi \ufffd"]


def test_two_files_in_one_upload_are_refused(client, settings) -> None:
    png = samples.make_png((32, 32))
    response = client.post("/api/chat/messages", data={"text": "two"},
                           files=[("sticker", ("a.png", png, "image/png")),
                                  ("image", ("b.png", png, "image/png"))],
                           headers=bearer("ann"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_files"


def test_a_generated_name_with_a_trailing_newline_is_not_served() -> None:
    name = "0123456789abcdef0123456789abcdef.png"
    reply = Reply(text="x", user_emotion=Emotion.neutral, user_valence=0.0,
                  planned_emotion=Emotion.neutral,
                  sticker=StickerChoice(id="g", emotion=Emotion.neutral, description="",
                                        image_path=f"/data/generated/{name}\n", mode="gen"))
    assert generated_json(reply) is None


def test_uploaded_file_names_are_not_logged(client, settings, caplog) -> None:
    caplog.set_level(logging.INFO)
    client.post("/api/chat/messages", data={"text": ""},
                files={"sticker": ("Holiday_with_Maria_Lopez.png", b"not a picture",
                                   "image/png")}, headers=bearer("ann"))
    messages = [r.getMessage() for r in caplog.records if r.name == "bots.web.app"]
    assert len(messages) == 1 and "image/png" in messages[0] and "13 bytes" in messages[0]
    assert "Maria" not in messages[0]


# --- 8. a picture in flight while someone forgets -------------------------------------

def test_forgetting_one_person_keeps_a_picture_another_is_sending(settings,
                                                                  transcripts) -> None:
    png = samples.make_png((48, 48))
    store = MediaStore(settings.media_dir)
    path = store.save(png, "png")
    record(transcripts, "bee", "look", [Media(kind=MediaKind.sticker, path=str(path),
                                              format="png")])
    submitter = HeldSubmitter(transcripts, held=True)
    app = make_app(settings, submitter, transcripts)

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chat.test") as c:
            sending = asyncio.create_task(c.post(
                "/api/chat/messages", data={"user": "ann", "text": ""},
                files={"sticker": ("s.png", png, "image/png")},
                headers=bearer("ann")))
            while not submitter.turns:
                await asyncio.sleep(0.02)
            removed = await asyncio.to_thread(forget_person, transcripts, store, "web", "bee")
            purged = await asyncio.to_thread(purge_orphan_media, transcripts.db, store, 0.0,
                                             time.time() + 10)
            assert (removed, purged) == (0, 0)
            submitter.release.set()
            return await sending

    response = asyncio.run(scenario())
    assert response.status_code == 200, response.text
    assert submitter.files_seen == [True] and path.is_file()


def test_the_embedded_queue_refuses_turns_past_its_bound() -> None:
    from bots.admission import BoundedSubmitter, Busy

    inner = HeldSubmitter(held=True)
    queue = BoundedSubmitter(inner, max_waiting=2)

    def turn(n: int) -> UserTurn:
        return UserTurn(platform="telegram", chat_id=str(n), user_id=str(n),
                        message_id="1", text="hi")

    async def scenario() -> None:
        waiting = [asyncio.create_task(queue.submit(turn(n))) for n in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Busy) as refused:
            await queue.submit(turn(3))
        assert refused.value.status == 503 and refused.value.retry_after_s > 0
        inner.release.set()
        await asyncio.gather(*waiting)
        assert (await queue.submit(turn(4))).text  # room again once they are answered

    asyncio.run(scenario())
