"""Moderation, polls and lucky draws on the pages, in headless Chromium against a real
`liveshop serve --demo`: the console deletes a viewer's chat line by tapping it and the line
leaves both viewers' pages; a poll started on the console gets a vote from each of two
viewers and the bars move on both viewers and the console; a 10-second draw gets an entrant
who then sees the winners, that they won, and how to verify the draw. Screenshots under
tests/artifacts/ for a person."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator

import pytest

from tests.pages_support import (
    ARTIFACTS,
    ROOM,
    UNIT_MS,
    LiveshopServer,
    PageLog,
    require_browser,
    running_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

Opener = Callable[..., "tuple[Page, PageLog]"]  # the `tab` fixture (tests/app/conftest.py)

with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect


HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveshopServer]:
    require_browser()
    with running_server(tmp_path_factory.mktemp("liveshop-interaction")) as srv:
        yield srv


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_connected(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=5 * UNIT_MS)


def say(viewer: Page, text: str) -> None:
    viewer.fill("#chat-input", text)
    viewer.click("#chat-send")


def test_the_console_deletes_a_chat_line_and_it_leaves_every_viewer(tab: Opener) -> None:
    console, clog = tab(f"/console/{ROOM}", "console", width=1280)
    a, alog = tab(f"/rooms/{ROOM}", "viewer-a")
    b, blog = tab(f"/rooms/{ROOM}", "viewer-b")
    for page in (console, a, b):
        wait_connected(page)
    say(a, "加我微信看看")
    say(b, "荔枝甜吗")
    for page in (a, b, console):
        expect(page.locator("#chat-list li", has_text="加我微信看看")).to_have_count(1)
        expect(page.locator("#chat-list li", has_text="荔枝甜吗")).to_have_count(1)
    shot(a, "interaction-1-before-delete-viewer-a")

    console.locator("#chat-list li", has_text="加我微信看看").click()
    menu = console.locator("#mod-menu")
    expect(menu).to_be_visible()
    expect(menu).to_contain_text("加我微信看看")
    shot(console, "interaction-2-mod-menu-console")
    menu.locator("[data-mod-action='delete']").click()
    expect(console.locator("#mod-status")).to_have_attribute("data-state", "ok")
    expect(console.locator("#mod-status")).to_have_text("已执行：删除消息")
    for page in (a, b, console):
        expect(page.locator("#chat-list li", has_text="加我微信看看")).to_have_count(0)
        expect(page.locator("#chat-list li", has_text="荔枝甜吗")).to_have_count(1)
    expect(menu).to_be_hidden()
    shot(b, "interaction-3-after-delete-viewer-b")

    # A blocked word, added in the editor, shows in the list.
    console.fill("#words-input", "加微信, vx号")
    console.click("#words-add")
    expect(console.locator("#words-list .word-chip")).to_have_text(["加微信", "vx号"])
    console.fill("#words-input", "vx号")
    console.click("#words-remove")
    expect(console.locator("#words-list .word-chip")).to_have_text(["加微信"])
    assert not clog.all() + alog.all() + blog.all()


def test_a_poll_runs_from_the_console_through_two_viewers(tab: Opener) -> None:
    console, clog = tab(f"/console/{ROOM}", "console", width=1280)
    a, alog = tab(f"/rooms/{ROOM}", "viewer-a")
    b, blog = tab(f"/rooms/{ROOM}", "viewer-b")
    for page in (console, a, b):
        wait_connected(page)
    console.fill("#poll-question", "下一个上什么?")
    console.click("#poll-add-option")
    inputs = console.locator(".poll-option-input")
    for i, text in enumerate(["荔枝", "芒果", "榴莲"]):
        inputs.nth(i).fill(text)
    console.fill("#poll-duration", "60")
    console.click("#poll-start")

    for viewer in (a, b):
        card = viewer.locator(".poll-card[data-status='open']")
        expect(card).to_have_count(1)
        expect(card.locator(".poll-question")).to_have_text("下一个上什么?")
        expect(card.locator(".poll-choice")).to_have_text(["荔枝", "芒果", "榴莲"])
    shot(a, "interaction-4-poll-open-viewer-a")

    a.locator(".poll-choice", has_text="芒果").click()
    b.locator(".poll-choice", has_text="芒果").click()
    for page in (a, b, console):
        card = page.locator(".poll-card")
        expect(card).to_have_attribute("data-total", "2", timeout=5 * UNIT_MS)
        expect(card.locator(".poll-bar[data-option='1']")).to_have_attribute("data-count", "2")
        expect(card.locator(".poll-bar[data-option='0']")).to_have_attribute("data-count", "0")
    expect(a.locator(".poll-voted")).to_have_text("已投票")
    expect(a.locator(".poll-bar.mine")).to_have_attribute("data-option", "1")
    width = a.locator(".poll-bar[data-option='1'] .poll-bar-fill").evaluate("n => n.style.width")
    assert width == "100%"
    shot(a, "interaction-5-poll-voted-viewer-a")
    shot(console, "interaction-6-poll-console")
    assert not clog.all() + alog.all() + blog.all()


def test_a_draw_is_entered_drawn_and_verifiable(tab: Opener) -> None:
    console, clog = tab(f"/console/{ROOM}", "console", width=1280)
    a, alog = tab(f"/rooms/{ROOM}", "viewer-a")
    for page in (console, a):
        wait_connected(page)
    console.fill("#draw-prize", "荔枝一箱")
    console.fill("#draw-winners", "1")
    console.fill("#draw-duration", "10")
    console.select_option("#draw-eligible", "all")
    console.click("#draw-start")

    card = a.locator(".draw-card[data-status='open']")
    expect(card).to_have_count(1)
    expect(card.locator(".draw-prize")).to_have_text("荔枝一箱")
    expect(card.locator(".draw-clock")).to_contain_text("后开奖")
    card.locator(".draw-enter").click()
    expect(card.locator(".draw-enter")).to_contain_text("已参与")
    entrants = console.locator(".draw-card")
    expect(entrants).to_have_attribute("data-entrants", "1", timeout=5 * UNIT_MS)
    shot(a, "interaction-7-draw-entered-viewer-a")

    drawn = a.locator(".draw-card[data-status='drawn']")
    expect(drawn).to_have_count(1, timeout=20 * UNIT_MS)
    expect(drawn).to_have_attribute("data-won", "true")
    expect(drawn.locator(".draw-won")).to_have_text("恭喜，你中奖了！")
    expect(drawn.locator(".draw-winners li")).to_have_count(1)
    drawn.locator(".draw-verify summary").click()
    expect(drawn.locator(".draw-commitment")).to_have_text(HEX64)
    expect(drawn.locator(".draw-seed")).to_have_text(HEX64)
    seed = drawn.locator(".draw-seed").inner_text()
    commitment = drawn.locator(".draw-commitment").inner_text()
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == commitment
    expect(drawn.locator(".draw-verify-note")).to_contain_text("sha256(seed)")
    href = drawn.locator(".draw-entrants-link").get_attribute("href")
    assert href and href.startswith(f"/api/rooms/{ROOM}/draws/d")
    expect(console.locator(".draw-card[data-status='drawn'] .draw-winners li")).to_have_count(1)
    shot(a, "interaction-8-draw-drawn-viewer-a")
    shot(console, "interaction-9-draw-console")
    assert not clog.all() + alog.all()
