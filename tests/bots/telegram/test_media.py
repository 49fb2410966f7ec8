"""What people send besides text: stickers of every kind, photos, image documents, and
the files the bot must refuse with a clear sentence."""

from __future__ import annotations

import json
import sqlite3

import pytest

from engine.media import MediaError, MediaLimits, decode_bytes
from tests.bots.telegram.conftest import texts, wait_answer
from tests.engine import media_samples as samples

ANN = 1001


def user_rows(bot) -> list[tuple[str, list | None]]:
    with sqlite3.connect(bot.settings.data_dir / "stickerbot.db") as db:
        found = db.execute("SELECT text, media FROM messages WHERE role='user' ORDER BY id")
        return [(text, json.loads(media) if media else None) for text, media in found]


def refusal(bot, data: bytes, hint: str) -> str:
    with pytest.raises(MediaError) as caught:
        decode_bytes(data, MediaLimits.from_settings(bot.settings), hint)
    return caught.value.user_message


@pytest.mark.parametrize("kind, make, fmt", [
    ("static", samples.make_webp, "webp"),
    ("animated", samples.make_tgs, "tgs"),
    ("video", samples.make_webm, "webm"),
])
def test_every_sticker_kind_is_read_and_answered(bot, fake, kind, make, fmt) -> None:
    data = make()
    fake.send_sticker(ANN, ANN, data, kind=kind, emoji="😭", set_name="SadCats")
    assert wait_answer(fake, ANN)[0]["text"]
    [(_, media)] = user_rows(bot)
    assert media[0]["kind"] == "sticker" and media[0]["format"] == fmt
    assert (media[0]["emoji"], media[0]["set_name"]) == ("😭", "SadCats")
    with open(media[0]["path"], "rb") as stored:  # the original, kept in the media store
        assert stored.read() == data


@pytest.mark.parametrize("kind, make, hint", [
    ("static", lambda: samples.truncate(samples.make_webp()), "webp"),
    ("animated", lambda: samples.truncate(samples.make_tgs()), "tgs"),
    ("video", lambda: samples.truncate(samples.make_webm(), 0.3), "webm"),
    ("animated", lambda: samples.make_gzip_bomb(), "tgs"),
])
def test_broken_stickers_get_a_clear_sentence(bot, fake, kind, make, hint) -> None:
    data = make()
    expected = refusal(bot, data, hint)
    fake.send_sticker(ANN, ANN, data, kind=kind)
    assert wait_answer(fake, ANN)[0]["text"] == expected
    assert user_rows(bot) == []  # nothing reached the responder
    assert fake.calls_to("sendSticker") == []


def test_photo_with_caption(bot, fake) -> None:
    update = fake.send_photo(ANN, ANN, samples.make_jpeg((320, 240)), caption="look at my new dog")
    wait_answer(fake, ANN)
    [(text, media)] = user_rows(bot)
    assert text == "look at my new dog"
    assert media[0]["kind"] == "image" and media[0]["format"] == "jpeg"
    assert media[0]["caption"] == "look at my new dog"
    fetched = fake.calls_to("getFile")
    # One size is downloaded: the largest that fits.
    assert [f["file_id"] for f in fetched] == [update["message"]["photo"][-1]["file_id"]]


def test_image_document_and_unsupported_document(bot, fake) -> None:
    fake.send_document(ANN, ANN, samples.make_png(), file_name="me.png", mime_type="image/png",
                       caption="my drawing")
    wait_answer(fake, ANN)
    assert user_rows(bot)[0][0] == "my drawing"
    fake.send_document(ANN, ANN, b"%PDF-1.4 ...", file_name="cv.pdf",
                       mime_type="application/pdf")
    wait_answer(fake, ANN, 2)
    assert "can't open that kind of file" in texts(fake, ANN)[-1]
    assert len(fake.calls_to("getFile")) == 1  # the PDF was never downloaded


def test_size_cap_is_checked_before_download(bot, fake) -> None:
    big = samples.random_bytes(400_000)
    fake.send_document(ANN, ANN, big, file_name="big.png", mime_type="image/png")
    assert "too big" in wait_answer(fake, ANN)[0]["text"]
    assert fake.calls_to("getFile") == []


def test_an_under_declared_file_is_cut_off_while_downloading(bot, fake) -> None:
    stored = fake.add_file(samples.random_bytes(400_000), declared_size=1000, ext="png")
    fake.push_update({"message": {
        "message_id": 1, "date": 0, "chat": {"id": ANN, "type": "private", "first_name": "A"},
        "from": {"id": ANN, "is_bot": False, "first_name": "Ann"},
        "document": {"file_id": stored["file_id"], "file_unique_id": stored["file_unique_id"],
                     "file_name": "small.png", "mime_type": "image/png", "file_size": 1000},
    }})
    assert "too big" in wait_answer(fake, ANN)[0]["text"]
    assert len(fake.calls_to("getFile")) == 1
    assert not list(bot.settings.media_dir.rglob("*.png"))


def test_too_long_text_is_refused_politely(bot, fake) -> None:
    fake.send_text(ANN, ANN, "word " * 200)
    assert wait_answer(fake, ANN)[0]["text"] == (
        "Your message is too long: the limit is 500 characters.")
    assert user_rows(bot) == []
