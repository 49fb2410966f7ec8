"""Pictures and stickers people send on Discord: attachments and every sticker format are
read (the sticker's name travels with it), bad files get a clear sentence, and files over
the size cap are refused from their declared size."""

from __future__ import annotations

import json

import pytest

from tests.bots.discord.conftest import ANN, dm, rows, texts, wait_answers
from tests.engine import media_samples as samples


def stored_media(bot) -> list[dict]:
    return [m for (media,) in rows(bot, "SELECT media FROM messages WHERE role='user' "
                                        "AND media IS NOT NULL ORDER BY id")
            for m in json.loads(media)]


def test_image_attachment_is_read(bot, fake) -> None:
    channel = dm(fake)
    fake.send_message(channel, ANN, "look at this",
                      attachments=[("photo.jpg", samples.make_jpeg(), "image/jpeg")])
    wait_answers(fake, channel)
    (media,) = stored_media(bot)
    assert media["kind"] == "image" and media["format"] == "jpeg"
    assert (bot.settings.media_dir / media["path"]).exists() or media["path"]


@pytest.mark.parametrize(("format_type", "data", "fmt"), [
    (1, samples.make_png(), "png"),
    (2, samples.make_apng(), "png"),
    (3, samples.make_lottie_json(), "lottie"),
    (4, samples.make_gif(), "gif"),
], ids=["png", "apng", "lottie", "gif"])
def test_each_sticker_format_is_read_with_its_name(bot, fake, format_type, data, fmt) -> None:
    channel = dm(fake)
    fake.send_message(channel, ANN, "", stickers=[(777, "SadCat", format_type, data)])
    answer = wait_answers(fake, channel)[0]
    assert answer["content"] and "couldn't" not in answer["content"]
    (media,) = stored_media(bot)
    assert media["kind"] == "sticker" and media["format"] == fmt
    assert media["set_name"] == "SadCat"


def test_damaged_picture_gets_a_clear_sentence(bot, fake) -> None:
    channel = dm(fake)
    fake.send_message(channel, ANN, "",
                      attachments=[("broken.png", samples.truncate(samples.make_png((200, 200)),
                                                                   0.3), "image/png")])
    wait_answers(fake, channel)
    assert "looks damaged" in texts(fake, channel)[0]
    assert stored_media(bot) == []


def test_unsupported_file_and_too_large_attachment_are_refused(bot, fake) -> None:
    channel = dm(fake)
    fake.send_message(channel, ANN, "my homework",
                      attachments=[("essay.pdf", b"%PDF-1.4 not a picture", "application/pdf")])
    wait_answers(fake, channel)
    assert "can't open that kind of file" in texts(fake, channel)[0]
    big = samples.random_bytes(bot.settings.max_upload_bytes + 10)
    fake.send_message(channel, ANN, "", attachments=[("huge.png", big, "image/png")])
    wait_answers(fake, channel, 2)
    assert "too big" in texts(fake, channel)[1]
