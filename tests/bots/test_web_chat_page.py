"""The web chat page in headless Chromium (Debian `chromium`, driven by Playwright).

A person types a message and sees the reply with its sticker image; picks a sticker
from the picker; and text with HTML in it shows as text.
"""

from __future__ import annotations

import threading
import time

import pytest
import uvicorn
from playwright.sync_api import expect, sync_playwright

from bots.web.app import create_app
from settings import Settings
from tasks.runtime import init_runtime, reset_runtime
from tasks.submit import TurnSubmitter
from tests.factories import tiny_responder
from tests.harness.browser import CHROMIUM, CHROMIUM_ARGS
from tests.serve_process import free_port


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, classifier, library, index):
    settings = Settings(data_dir=tmp_path_factory.mktemp("page-data"))
    reset_runtime()
    init_runtime(settings, tiny_responder(classifier, library, index))
    submitter = TurnSubmitter(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, submitter, library),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the web chat did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    submitter.close()
    reset_runtime()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context()
    page = context.new_page()
    page.goto(base_url)
    yield page
    context.close()


def test_typing_a_message_shows_the_reply_and_its_sticker(page) -> None:
    page.fill("#text", "I finally got the job I wanted!")
    page.press("#text", "Enter")
    expect(page.locator(".msg.user")).to_have_text("I finally got the job I wanted!")
    bot = page.locator(".msg.bot").first
    expect(bot).to_be_visible(timeout=30_000)
    expect(bot.locator(".meta")).to_contain_text("happiness")
    sticker = bot.locator("img")
    expect(sticker).to_have_count(1)
    assert sticker.evaluate("img => img.complete && img.naturalWidth") == 512


def test_picking_a_sticker_sends_it(page) -> None:
    page.click("#picker-toggle")
    page.click("#emotions button[data-emotion=sadness]")
    page.locator("#grid img").first.click()
    expect(page.locator(".msg.user img")).to_have_count(1)
    bot = page.locator(".msg.bot").first
    expect(bot).to_be_visible(timeout=30_000)
    expect(bot.locator(".meta")).to_contain_text("sadness")


def test_html_in_a_message_is_shown_as_text(page) -> None:
    attack = "<img src=x onerror=\"document.title='pwned'\"><b>bold?</b>"
    page.fill("#text", attack)
    page.press("#text", "Enter")
    expect(page.locator(".msg.user")).to_have_text(attack)
    expect(page.locator(".msg.bot").first).to_be_visible(timeout=30_000)
    assert page.locator(".msg.user b").count() == 0
    assert page.title() == "StickerBot"


def test_a_rejected_file_shows_the_servers_words(page, tmp_path) -> None:
    bad = tmp_path / "notes.webm"
    bad.write_bytes(b"not a video at all")
    page.set_input_files("#upload", str(bad))
    expect(page.locator(".msg.error")).to_contain_text("WEBM", timeout=30_000)
