"""The next live (下次直播) and its reservations (预约) on the pages, in headless Chromium
against a real `liveshop serve --demo`: the console ends the demo's live and sets the next
one two hours ahead (after a time in the past and one the server refuses, both said under
the form); a signed-in viewer sees the title and a countdown by the server's clock, reserves
(count 1), a second viewer reserves (2, and 2 after the first reloads), the first takes it
back; an anonymous viewer is told to sign in; a time that passes shows 即将开始; going live
hides the card, and 清除 clears the setting. Screenshots under tests/artifacts/ for a person."""

from __future__ import annotations

import contextlib
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
    from playwright.sync_api import Browser, Page, expect

HOUR_MS = 3_600_000
# A datetime-local value for `now + ms` in the page's own time zone, to the second (the
# picker shows minutes; seconds make the expected countdown exact).
LOCAL_INPUT = """ms => {
  const d = new Date(Date.now() + ms), p = n => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}` +
    `T${p(d.getHours())}:${p(d.getMinutes())}:${p(Math.max(1, d.getSeconds()))}`;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveshopServer]:
    require_browser()
    with running_server(tmp_path_factory.mktemp("liveshop-schedule")) as srv:
        yield srv


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("scrollTo(0, 0)")
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} scrolls sideways"


def wait_connected(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=5 * UNIT_MS)


def set_next_live(console: Page, in_ms: int, title: str) -> None:
    console.fill("#schedule-at", console.evaluate(LOCAL_INPUT, in_ms))
    console.fill("#schedule-title", title)
    console.click("#schedule-save")


def expect_card(viewer: Page, *, count: int, reserved: bool) -> None:
    expect(viewer.locator("#schedule-count")).to_have_attribute("data-count", str(count))
    expect(viewer.locator("#schedule-count")).to_have_text(f"{count} 人已预约")
    button = viewer.locator("#reserve-button")
    expect(button).to_have_attribute("data-reserved", "1" if reserved else "0")
    expect(button).to_have_text("取消预约" if reserved else "预约")
    mine = viewer.locator(".nextlive-mine")
    if reserved:
        expect(mine).to_have_text("✓ 已预约")
    else:
        expect(mine).to_be_hidden()


def anonymous_viewer(browser: Browser, server: LiveshopServer) -> Page:
    """A viewer page whose demo token endpoint answers 404, as a production server does."""
    context = browser.new_context(
        viewport={"width": 375, "height": 667}, locale="zh-CN", is_mobile=True, has_touch=True
    )
    context.route("**/api/demo/token**", lambda route: route.fulfill(status=404, body="{}"))
    page = context.new_page()
    page.set_default_timeout(5 * UNIT_MS)
    page.goto(f"{server.base_url}/rooms/{ROOM}")
    return page


def test_the_console_sets_the_next_live_and_viewers_reserve_it(
    tab: Opener, browser: Browser, server: LiveshopServer
) -> None:
    console, clog = tab(f"/console/{ROOM}", "console", width=1280)
    wait_connected(console)
    # The demo room starts live: end it (two taps) so the room is off air.
    badge = console.locator("#live-badge")
    if console.locator("#live-info").is_visible():
        console.click("#endlive-btn")
        console.click("#endlive-btn")
    expect(badge).to_have_attribute("data-live", "false")
    status = console.locator("#schedule-status")
    expect(status).to_have_attribute("data-state", "none")
    expect(status).to_have_text("还没有设置下次直播")

    # A time in the past is caught on the page; one the server refuses shows its reason.
    set_next_live(console, -HOUR_MS, "昨天的")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_have_text("开播时间要晚于现在")
    console.fill("#schedule-at", "2200-01-01T20:00")
    console.click("#schedule-save")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_contain_text("没有保存：开播时间或标题不被接受")
    expect(status.locator(".error-detail")).to_contain_text("next_live_at")
    shot(console, "schedule-1-console-refused")

    # Two hours ahead less 15 s: the countdown reads 1:59:xx whatever the second.
    set_next_live(console, 2 * HOUR_MS - 15_000, "周五荔枝专场")
    expect(status).to_have_attribute("data-state", "set")
    expect(status).to_contain_text("已设置：")
    expect(status).to_contain_text("周五荔枝专场")

    a, alog = tab(f"/rooms/{ROOM}", "viewer-a")
    wait_connected(a)
    card = a.locator("#schedule-card")
    expect(card).to_be_visible()
    expect(card).to_have_attribute("data-state", "upcoming")
    expect(card.locator(".nextlive-title")).to_have_text("周五荔枝专场")
    expect(a.locator("#schedule-countdown")).to_have_text(re.compile(r"^0?1:59:\d\d$"))
    left = int(a.locator("#schedule-countdown").get_attribute("data-left") or 0)
    assert 2 * 3600 - 15 - 10 < left <= 2 * 3600 - 15, left
    expect_card(a, count=0, reserved=False)
    shot(a, "schedule-2-viewer-a-before")

    a.click("#reserve-button")
    expect_card(a, count=1, reserved=True)
    shot(a, "schedule-3-viewer-a-reserved")

    b, blog = tab(f"/rooms/{ROOM}", "viewer-b")
    wait_connected(b)
    expect_card(b, count=1, reserved=False)
    b.click("#reserve-button")
    expect_card(b, count=2, reserved=True)

    a.reload()  # the same tab keeps its demo user: still reserved, and now two
    wait_connected(a)
    expect_card(a, count=2, reserved=True)
    a.click("#reserve-button")
    expect_card(a, count=1, reserved=False)

    anon = anonymous_viewer(browser, server)
    try:
        wait_connected(anon)
        expect(anon.locator("#schedule-card")).to_be_visible()
        expect(anon.locator("#schedule-count")).to_have_text("1 人已预约")
        expect(anon.locator("#reserve-button")).to_be_disabled()
        expect(anon.locator("#reserve-button")).to_have_text("登录后可预约")
        shot(anon, "schedule-4-viewer-anonymous")
    finally:
        anon.context.close()

    b.click("#lang-toggle")
    expect(b.locator("#reserve-button")).to_have_text("Cancel reservation")
    expect(b.locator("#schedule-count")).to_have_text("1 reserved")
    wait_connected(b)
    shot(b, "schedule-5-viewer-b-en")
    shot(console, "schedule-6-console-set")
    console.set_viewport_size({"width": 375, "height": 667})
    shot(console, "schedule-6-console-set-375")
    console.set_viewport_size({"width": 1280, "height": 800})

    # A time that comes with no live yet: 即将开始, never a negative clock.
    set_next_live(console, 4_000, "马上开始")
    expect(status).to_have_attribute("data-state", "set")
    a.reload()
    wait_connected(a)
    expect(card).to_have_attribute("data-state", "due", timeout=10 * UNIT_MS)
    expect(a.locator("#schedule-countdown")).to_have_text("即将开始")
    shot(a, "schedule-7-viewer-a-due")

    # Going live: the card leaves every viewer's page.
    console.fill("#golive-title", "周五荔枝专场")
    console.click("#golive-btn")
    expect(badge).to_have_attribute("data-live", "true")
    for viewer in (a, b):
        expect(viewer.locator("#live-badge")).to_have_attribute("data-live", "true")
        expect(viewer.locator("#schedule-card")).to_be_hidden()
    expect(status).to_have_attribute("data-state", "unknown")
    expect(status).to_contain_text("直播中")
    console.click("#schedule-clear")  # next_live_at 0: nothing set
    expect(status).to_have_attribute("data-state", "none")
    expect(console.locator("#schedule-clear")).to_be_hidden()
    # The one 400 is the refusal asked for above (Chromium logs every refused request).
    refused = "the server responded with a status of 400"
    assert [e for e in clog.all() if refused not in e] == []
    assert clog.console_errors.count(f"Failed to load resource: {refused} (Bad Request)") == 1
    assert not alog.all() + blog.all()
