"""The dashboard in headless Chromium (Debian `chromium`, driven by Playwright): an
operator logs in, filters the list, opens a conversation and sees both sides' sticker
images, flags a reply, exports conversations, and sees an injected <script> as text."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import select

from review import auth
from review.app import create_review_app
from settings import Settings
from storage.media_store import MediaStore
from storage.models import ReviewMark
from storage.transcript import TranscriptStore
from tests.harness.browser import CHROMIUM, CHROMIUM_ARGS
from tests.review.conftest import PASSWORD, SCRIPT_TEXT, seed
from tests.serve_process import free_port


@pytest.fixture
def site(sqlite_database, review_library, review_library_root, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    settings = Settings(data_dir=data)
    media = MediaStore(settings.media_dir)
    seeded = seed(sqlite_database, review_library, media)
    auth.add_operator(sqlite_database, "olivia", PASSWORD)
    parent = FastAPI()
    parent.mount("/review", create_review_app(
        settings, review_library, db=sqlite_database,
        transcripts=TranscriptStore(sqlite_database), media_store=media))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(parent, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", seeded, sqlite_database
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(site):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        context.close()
        browser.close()
        assert errors == []


def images_rendered(page, selector: str) -> list[int]:
    page.wait_for_load_state("load")
    return page.locator(selector).evaluate_all(
        "imgs => imgs.map(img => img.complete ? img.naturalWidth : 0)")


def test_an_operator_reviews_flags_and_exports(site, page, tmp_path: Path) -> None:
    base, seeded, db = site
    page.goto(f"{base}/review/")
    expect(page).to_have_url(f"{base}/review/login")
    page.fill("input[name=username]", "olivia")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/review/")
    cookie = next(c for c in page.context.cookies() if c["name"] == "review_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/review"
    expect(page.locator("tr.conversation")).to_have_count(3)

    # Filter: Telegram only, then flagged ones.
    page.select_option("select[name=platform]", "telegram")
    page.click("#apply")
    expect(page.locator("tr.conversation")).to_have_count(1)
    expect(page.locator("#total")).to_have_text("1")
    assert page.locator("tr.conversation").get_attribute("data-id") == str(seeded.bob_conv)
    page.goto(f"{base}/review/?has_sticker=yes&platform=web")
    expect(page.locator("tr.conversation")).to_have_count(1)

    # Alice's conversation: her sticker and the bot's, as images.
    page.click(f"tr.conversation[data-id='{seeded.alice_conv}'] td.text a")
    expect(page.locator("h1")).to_have_text(f"Conversation {seeded.alice_conv}")
    expect(page.locator(".msg img.sticker")).to_have_count(2)
    assert all(w > 0 for w in images_rendered(page, ".msg img.sticker"))
    bot = page.locator(f"#m{seeded.alice_bot}")
    expect(bot.locator(".meta")).to_contain_text("planned happiness")
    expect(bot.locator(".meta")).to_contain_text("800 ms")
    expect(bot.locator(".meta")).to_contain_text("model v1")
    expect(bot.locator(".scores")).to_contain_text("emp_txt 4.2")

    # Flag the reply with a note.
    bot.locator("input[name=note]").fill("Could be warmer <3")
    bot.locator("button.flag").click()
    flagged = page.locator(f"#m{seeded.alice_bot} .marks")
    expect(flagged).to_contain_text("flag")
    expect(flagged).to_contain_text("Could be warmer <3")
    with db.session() as s:
        mark = s.execute(select(ReviewMark).where(ReviewMark.message_id == seeded.alice_bot)
                         ).scalar_one()
    assert (mark.kind, mark.note, mark.source) == ("flag", "Could be warmer <3", "operator")

    # Export two ticked conversations.
    page.goto(f"{base}/review/")
    page.check(f"input[name=ids][value='{seeded.alice_conv}']")
    page.check(f"input[name=ids][value='{seeded.bob_conv}']")
    with page.expect_download() as download:
        page.click("#export")
    saved = tmp_path / "export.jsonl"
    download.value.save_as(saved)
    sessions = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [s["session_id"] for s in sessions] == [f"web:{seeded.alice_conv}",
                                                   f"telegram:{seeded.bob_conv}"]
    assert sessions[0]["conversation"][0]["system_sticker"]["emotion"] == "happiness"
    assert {"turn": 1, "kind": "flag", "source": "operator",
            "note": "Could be warmer <3"} in sessions[0]["review_marks"]

    # Bob's message carries HTML and a script: shown as text, never run.
    page.goto(f"{base}/review/conversations/{seeded.bob_conv}")
    user = page.locator(".msg.user").first
    expect(user.locator(".text")).to_have_text(SCRIPT_TEXT)
    assert user.locator(".text b, .text script, .text img").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    expect(page.locator(".badge.crisis").first).to_contain_text("self_harm")
    assert all(w > 0 for w in images_rendered(page, ".msg img.sticker"))  # webp from the store
    page.goto(f"{base}/review/?q=script")
    expect(page.locator("td.text").first).to_have_text(SCRIPT_TEXT[:140])
    assert page.evaluate("() => window.__pwned") is None

    # The metrics page draws its charts; logging out ends the session.
    page.goto(f"{base}/review/metrics")
    expect(page.locator("svg.chart")).to_have_count(6)
    page.click("header form.logout button")
    expect(page).to_have_url(f"{base}/review/login")
    page.goto(f"{base}/review/")
    expect(page).to_have_url(f"{base}/review/login")
