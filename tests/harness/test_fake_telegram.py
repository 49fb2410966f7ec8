"""The fake Telegram Bot API, driven by the real python-telegram-bot over real HTTP."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.harness.fake_telegram import FakeTelegram

WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(range(40))
TGS = gzip.compress(b'{"v":"5.5.2","fr":60,"ip":0,"op":60,"w":512,"h":512,"layers":[]}')


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def make_bot(tg: FakeTelegram, token: str | None = None) -> Bot:
    return Bot(
        token or tg.token,
        base_url=tg.root_url + "/bot",
        base_file_url=tg.root_url + "/file/bot",
    )


def build_app(tg: FakeTelegram) -> Application[Any, Any, Any, Any, Any, Any]:
    builder = ApplicationBuilder().token(tg.token).base_url(tg.root_url + "/bot")
    return builder.base_file_url(tg.root_url + "/file/bot").build()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def raw_call(tg: FakeTelegram, method: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    url = f"{tg.root_url}/bot{token or tg.token}/{method}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b""), timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# ----- the Application, end to end -------------------------------------------------------
async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(f"echo: {update.message.text}", do_quote=True)


async def _start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    await update.message.reply_text(f"hello {' '.join(context.args or [])}".strip())


async def _sticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.sticker is not None
    sticker = update.message.sticker
    data = await (await context.bot.get_file(sticker.file_id)).download_as_bytearray()
    await update.message.reply_text(f"{sticker.emoji} {len(data)} animated={sticker.is_animated}")


def test_echo_application_polls_and_replies(tg: FakeTelegram) -> None:
    async def scenario() -> None:
        app = build_app(tg)
        app.add_handler(CommandHandler("start", _start))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, _echo))
        app.add_handler(MessageHandler(filters.Sticker.ALL, _sticker))
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            await asyncio.to_thread(tg.wait_for, "getUpdates")
            sent = tg.send_text(42, 42, "hi there 🙂")
            replies = await asyncio.to_thread(tg.wait_for, "sendMessage")
            assert replies[0]["chat_id"] == 42
            assert replies[0]["text"] == "echo: hi there 🙂"
            assert replies[0]["reply_parameters"]["message_id"] == sent["message"]["message_id"]

            tg.send_command(42, 42, "start", "friend")
            tg.send_command(-100, 7, "start", chat_type="supergroup")  # "/start@botname"
            tg.send_sticker(42, 42, TGS, kind="animated", emoji="😢")
            await asyncio.to_thread(tg.wait_for, "sendMessage", 4)
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()

    run(scenario())
    names = [m for m, _ in tg.calls]
    assert names[:3] == ["getMe", "deleteWebhook", "getUpdates"]
    texts = [m["text"] for m in tg.sent_messages(42)]
    assert texts == ["echo: hi there 🙂", "hello friend", f"😢 {len(TGS)} animated=True"]
    assert [m["text"] for m in tg.sent_messages(-100)] == ["hello"]
    mine = tg.sent_messages(42)
    assert [m["message_id"] for m in mine] == sorted({m["message_id"] for m in mine})
    assert mine[0]["reply_to_message"]["text"] == "hi there 🙂"
    assert tg.calls_to("getFile")[0]["file_id"].startswith("FAKE")
    # Offsets only grow, and on stop PTB confirmed everything: nothing is left pending.
    offsets = [p["offset"] for p in tg.calls_to("getUpdates") if "offset" in p]
    assert offsets == sorted(offsets) and offsets[-1] > 0
    assert raw_call(tg, "getWebhookInfo")[1]["result"]["pending_update_count"] == 0


# ----- files -------------------------------------------------------------------------------
def test_sticker_file_downloads_with_the_same_bytes(tg: FakeTelegram) -> None:
    update = tg.send_sticker(5, 5, WEBP, emoji="😀", set_name="Pack")
    big = tg.add_file(b"x" * 10, declared_size=25 * 1024 * 1024)

    async def scenario() -> None:
        async with make_bot(tg) as bot:
            (got,) = await bot.get_updates()
            sticker = got.message.sticker
            assert sticker.type == "regular" and not sticker.is_animated and not sticker.is_video
            assert sticker.set_name == "Pack" and sticker.file_size == len(WEBP)
            file = await bot.get_file(sticker.file_id)
            assert file.file_path.endswith(".webp")
            assert bytes(await file.download_as_bytearray()) == WEBP
            with pytest.raises(BadRequest, match="(?i)wrong file_id"):
                await bot.get_file("nope")
            with pytest.raises(BadRequest, match="(?i)file is too big"):
                await bot.get_file(big["file_id"])

    assert update["message"]["sticker"]["file_id"]
    run(scenario())


def test_send_sticker_upload_then_reuse_file_id(tg: FakeTelegram) -> None:
    tg.send_text(9, 9, "hello")

    async def scenario() -> None:
        async with make_bot(tg) as bot:
            first = await bot.send_sticker(9, sticker=WEBP, emoji="🙂")
            again = await bot.send_sticker(9, sticker=first.sticker.file_id)
            assert again.sticker.file_id == first.sticker.file_id
            assert again.message_id == first.message_id + 1
            with pytest.raises(BadRequest, match="(?i)wrong file identifier"):
                await bot.send_sticker(9, sticker="unknown-id")
            with pytest.raises(BadRequest, match="(?i)chat not found"):
                await bot.send_sticker(12345, sticker=first.sticker.file_id)

    run(scenario())
    upload, reuse = tg.calls_to("sendSticker")[:2]
    assert upload["sticker"]["data"] == WEBP and upload["sticker"]["filename"]
    assert isinstance(reuse["sticker"], str)
    stickers = [m["sticker"] for m in tg.sent_messages(9)]
    assert len(stickers) == 2 and tg.file_bytes(stickers[0]["file_id"]) == WEBP


def test_photo_document_and_chat_action(tg: FakeTelegram) -> None:
    tg.send_photo(3, 3, b"\xff\xd8jpeg", caption="look")
    tg.send_document(3, 3, b"%PDF", file_name="a.pdf", mime_type="application/pdf")

    async def scenario() -> None:
        async with make_bot(tg) as bot:
            photo_update, doc_update = await bot.get_updates()
            sizes = photo_update.message.photo
            assert len(sizes) == 3 and sizes[-1].width > sizes[0].width
            assert photo_update.message.caption == "look"
            for size in sizes:
                assert (
                    await (await bot.get_file(size.file_id)).download_as_bytearray()
                    == b"\xff\xd8jpeg"
                )
            assert doc_update.message.document.file_name == "a.pdf"
            assert await bot.send_chat_action(3, "choose_sticker") is True
            with pytest.raises(BadRequest):
                await bot.send_chat_action(3, "dancing")
            sent = await bot.send_photo(
                3, photo=b"\xff\xd8mine", caption="<b>hi</b>", parse_mode="HTML"
            )
            assert sent.caption == "hi" and len(sent.photo) == 3

    run(scenario())


# ----- failures ------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Deprecated since version v22.2")  # RetryAfter's own
def test_injected_failures_raise_ptb_errors(tg: FakeTelegram) -> None:
    tg.send_text(1, 1, "hi")

    async def scenario() -> None:
        async with make_bot(tg) as bot:
            tg.fail_next("sendMessage", 429, retry_after=1)
            with pytest.raises(RetryAfter, match="Retry in 1 seconds"):
                await bot.send_message(1, "a")
            tg.fail_next("sendMessage", 502, count=2)
            for _ in range(2):
                with pytest.raises(NetworkError) as info:
                    await bot.send_message(1, "b")
                assert type(info.value) is NetworkError
            tg.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user")
            with pytest.raises(Forbidden, match="blocked by the user"):
                await bot.send_message(1, "c")
            tg.fail_next(
                "getUpdates", 409, description="Conflict: terminated by other getUpdates request"
            )
            with pytest.raises(Conflict, match="terminated by other"):
                await bot.get_updates()
            assert (await bot.send_message(1, "d")).text == "d"
        wrong = make_bot(tg, token="123456:WRONG")
        with pytest.raises(InvalidToken, match="rejected"):
            await wrong.initialize()  # its getMe gets 401
        await wrong.shutdown()

    run(scenario())
    assert len(tg.calls_to("sendMessage")) == 5  # failed calls are recorded too
    assert [m["text"] for m in tg.sent_messages(1)] == ["d"]
    status, body = raw_call(tg, "noSuchMethod")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    status, body = raw_call(tg, "getMe", token="1:bad")
    assert status == 401 and body["description"] == "Unauthorized"
    status, body = raw_call(tg, "GETME")  # method names are case-insensitive, as on Telegram
    assert status == 200 and body["result"]["username"] == tg.bot_username
    with pytest.raises(AssertionError, match="sendSticker"):
        tg.wait_for("sendSticker", timeout=0.2)


def test_message_text_rules(tg: FakeTelegram) -> None:
    tg.send_text(2, 2, "hi")

    async def scenario() -> None:
        async with make_bot(tg) as bot:
            assert len((await bot.send_message(2, "x" * 4096)).text) == 4096
            with pytest.raises(BadRequest, match="(?i)message is too long"):
                await bot.send_message(2, "x" * 4097)
            with pytest.raises(BadRequest, match="(?i)text is empty"):
                await bot.send_message(2, "")
            with pytest.raises(BadRequest, match="reserved"):
                await bot.send_message(2, "Hi there.", parse_mode="MarkdownV2")
            ok = await bot.send_message(2, "*Hi* there\\.", parse_mode="MarkdownV2")
            assert ok.text == "Hi there."
            ok = await bot.send_message(2, "<b>a</b> &lt;3", parse_mode="HTML")
            assert ok.text == "a <3"
            with pytest.raises(BadRequest, match="parse entities"):
                await bot.send_message(2, "<b>a", parse_mode="HTML")
            with pytest.raises(BadRequest, match="parse entities"):
                await bot.send_message(2, "I <3 you", parse_mode="HTML")
            with pytest.raises(BadRequest, match="(?i)replied not found"):
                await bot.send_message(2, "r", reply_parameters=ReplyParameters(999))

    run(scenario())


# ----- update delivery -----------------------------------------------------------------------
def test_offset_confirmation_long_polling_and_redeliver(tg: FakeTelegram) -> None:
    first = tg.send_text(4, 4, "one")
    second = tg.send_text(4, 4, "two")

    async def scenario() -> None:
        async with make_bot(tg) as bot:
            got = await bot.get_updates()
            assert [u.update_id for u in got] == [first["update_id"], second["update_id"]]
            # Not confirmed yet: the same updates come again.
            assert len(await bot.get_updates()) == 2
            assert len(await bot.get_updates(offset=second["update_id"])) == 1
            after = second["update_id"] + 1
            assert await bot.get_updates(offset=after) == ()

            # redeliver() re-sends an update the client already confirmed, with the same
            # update_id. The fake delivers it exactly once more (offset filtering does not
            # hide it) and drops it at the next call whose offset is above its id, so a
            # bot sees the duplicate once: neither lost nor repeated forever.
            tg.redeliver(first)
            again = await bot.get_updates(offset=after)
            assert [u.update_id for u in again] == [first["update_id"]]
            assert again[0].message.text == "one"
            assert await bot.get_updates(offset=after) == ()

            # Long polling holds the request until an update arrives...
            threading.Timer(0.3, tg.send_text, args=(4, 4, "three")).start()
            began = time.monotonic()
            got = await bot.get_updates(offset=after, timeout=5)
            assert [u.message.text for u in got] == ["three"]
            assert time.monotonic() - began < 3
            # ...or until its timeout passes.
            began = time.monotonic()
            assert await bot.get_updates(offset=got[0].update_id + 1, timeout=1) == ()
            assert 0.8 < time.monotonic() - began < 3

            # A second poller terminates a long poll still waiting, as on Telegram.
            async with make_bot(tg) as other:
                waiting = asyncio.create_task(bot.get_updates(offset=after + 5, timeout=5))
                await asyncio.sleep(0.3)
                assert await other.get_updates(offset=after + 5) == ()
                with pytest.raises(Conflict, match="terminated by other getUpdates"):
                    await waiting

    run(scenario())


def test_buttons_callbacks_and_edits(tg: FakeTelegram) -> None:
    tg.send_text(6, 6, "menu please")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="more:1")]])

    async def scenario() -> None:
        async with make_bot(tg) as bot:
            (first,) = await bot.get_updates()
            menu = await bot.send_message(6, "Pick one", reply_markup=keyboard)
            with pytest.raises(ValueError):
                tg.press_button(6, 6, menu.message_id, "other")
            tg.press_button(6, 6, menu.message_id, "more:1")
            (pressed,) = await bot.get_updates(offset=first.update_id + 1)
            query = pressed.callback_query
            assert query.data == "more:1" and query.message.message_id == menu.message_id
            assert await bot.answer_callback_query(query.id, text="ok") is True
            with pytest.raises(BadRequest, match="(?i)query is too old"):
                await bot.answer_callback_query(query.id)
            edited = await bot.edit_message_text("Picked", chat_id=6, message_id=menu.message_id)
            assert edited.text == "Picked" and edited.edit_date is not None
            with pytest.raises(BadRequest, match="(?i)not modified"):
                await bot.edit_message_text("Picked", chat_id=6, message_id=menu.message_id)
            with pytest.raises(BadRequest, match="(?i)message to edit not found"):
                await bot.edit_message_text("x", chat_id=6, message_id=first.message.message_id)
            with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
                long = InlineKeyboardButton("L", callback_data="x" * 65)
                await bot.send_message(6, "t", reply_markup=InlineKeyboardMarkup([[long]]))

    run(scenario())
    (menu,) = tg.sent_messages(6)
    assert menu["text"] == "Picked" and "reply_markup" not in menu

    tg.send_text(6, 6, "reply", reply_to_bot=True)
    status, body = raw_call(tg, "getUpdates")
    assert body["result"][-1]["message"]["reply_to_message"]["message_id"] == menu["message_id"]


def test_commands_and_group_mentions(tg: FakeTelegram) -> None:
    async def scenario() -> None:
        async with make_bot(tg) as bot:
            await bot.set_my_commands([("start", "Say hi"), ("stickers", "List stickers")])
            got = await bot.get_my_commands()
            assert [c.command for c in got] == ["start", "stickers"]
            with pytest.raises(BadRequest, match="(?i)bot_command_invalid"):
                await bot.set_my_commands([("Bad Command", "x")])
            tg.mention(-5, 8, "how are you?")
            (update,) = await bot.get_updates()
            entity = update.message.entities[0]
            assert entity.type == "mention"
            assert update.message.parse_entity(entity) == "@" + tg.bot_username

    run(scenario())
    assert tg.commands == [
        {"command": "start", "description": "Say hi"},
        {"command": "stickers", "description": "List stickers"},
    ]


# ----- webhook -------------------------------------------------------------------------------
def test_webhook_delivery_with_secret_and_retries(tg: FakeTelegram) -> None:
    async def scenario() -> None:
        received: list[tuple[str | None, dict[str, Any]]] = []
        failures_left = [1]

        async def hook(request: web.Request) -> web.Response:
            if failures_left[0]:
                failures_left[0] -= 1
                return web.Response(status=500)
            received.append(
                (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
            )
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        try:
            async with make_bot(tg) as bot:
                assert await bot.set_webhook(url, secret_token="s3cret_T0ken")
                assert tg.webhook is not None and tg.webhook["secret_token"] == "s3cret_T0ken"
                info = await bot.get_webhook_info()
                assert info.url == url
                with pytest.raises(Conflict, match="webhook is active"):
                    await bot.get_updates()
                sent = tg.send_text(11, 11, "via hook")
                for _ in range(100):
                    if received:
                        break
                    await asyncio.sleep(0.05)
                assert received == [("s3cret_T0ken", sent)]
                attempts = [d["status"] for d in tg.webhook_deliveries]
                assert attempts == [500, 200]
                # A webhook that never answers: retried, then kept pending for getUpdates.
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    dead = f"http://127.0.0.1:{probe.getsockname()[1]}/gone"
                assert await bot.set_webhook(dead)
                lost = tg.send_text(11, 11, "kept")
                while len(tg.webhook_deliveries) < 5:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.1)
                info = await bot.get_webhook_info()
                assert info.pending_update_count == 1 and info.last_error_message
                assert await bot.delete_webhook()
                tg.send_text(11, 11, "polled")
                got = await bot.get_updates()
                assert [u.update_id for u in got] == [lost["update_id"], got[1].update_id]
                assert [u.message.text for u in got] == ["kept", "polled"]
        finally:
            await runner.cleanup()

    run(scenario())


def test_ptb_webhook_server_receives_updates_and_replies(tg: FakeTelegram) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> None:
        app = build_app(tg)
        app.add_handler(MessageHandler(filters.TEXT, _echo))
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="tg",
            webhook_url=f"http://127.0.0.1:{port}/tg",
            secret_token="abc_123",
        )
        try:
            tg.send_text(21, 21, "hooked")
            (reply,) = await asyncio.to_thread(tg.wait_for, "sendMessage")
            assert reply["text"] == "echo: hooked"
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()

    run(scenario())
    assert tg.calls_to("setWebhook")[0]["secret_token"] == "abc_123"
    assert [d["status"] for d in tg.webhook_deliveries] == [200]
