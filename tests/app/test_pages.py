"""The viewer page and the broadcaster console, driven in headless Chromium.

Each test talks to a real `liveshop serve --demo` process and checks what a person would
see: the flash-deal banner, the pickup code, the console's figures, the reconnect strip,
and screenshots at phone and desktop sizes (under tests/artifacts/, for a human to look at).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.pages_support import (
    ARTIFACTS,
    ROOM,
    UNIT_MS,
    LiveshopServer,
    PageLog,
    number,
    open_page,
    require_browser,
    running_server,
    sign_token,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

Opener = Callable[..., "tuple[Page, PageLog]"]  # the `tab` fixture (tests/app/conftest.py)

# Missing Playwright is reported by require_browser(): a skip, or a failure in CI.
with contextlib.suppress(ImportError):
    from playwright.sync_api import Browser, Page, WebSocketRoute, expect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveshopServer]:
    require_browser()
    with running_server(tmp_path_factory.mktemp("liveshop-pages")) as srv:
        yield srv


# ---- steps a person takes --------------------------------------------------------------


def wait_connected(page: Page, timeout_ms: int = 5 * UNIT_MS) -> None:
    """The page says it is connected once `welcome` has arrived."""
    expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=timeout_ms)


def fresh_session(console: Page, title: str) -> None:
    """End a running broadcast if any (two taps), then go live with `title`."""
    badge = console.locator("#live-badge")
    if console.locator("#live-info").is_visible():
        console.click("#endlive-btn")
        console.click("#endlive-btn")
        expect(badge).to_have_attribute("data-live", "false")
    console.fill("#golive-title", title)
    console.click("#golive-btn")
    expect(badge).to_have_attribute("data-live", "true")


def ensure_live(console: Page, title: str) -> None:
    if not console.locator("#live-info").is_visible():
        fresh_session(console, title)


def running_offer_ids(console: Page) -> set[str]:
    ids = console.locator("#offer-list .offer-row").evaluate_all(
        "rows => rows.map(r => r.dataset.offer)"
    )
    return set(ids)


def start_offer(
    console: Page, sku: str, price_yuan: str, qty: int, duration_s: int, limit: int
) -> str:
    """Fill the flash-deal form and start it; returns the new offer's id."""
    before = running_offer_ids(console)
    console.select_option("#offer-sku", sku)
    console.fill("#offer-price", price_yuan)
    console.fill("#offer-qty", str(qty))
    console.fill("#offer-duration", str(duration_s))
    console.fill("#offer-limit", str(limit))
    console.click("#offer-start")
    handle = console.wait_for_function(
        """before => [...document.querySelectorAll('#offer-list .offer-row')]
                      .map(r => r.dataset.offer).find(id => !before.includes(id)) || null""",
        arg=sorted(before),
    )
    return str(handle.json_value())


def tile(console: Page, name: str) -> float:
    return float(console.locator(f"#stat-{name}").get_attribute("data-value") or 0)


def wait_tile_above(console: Page, name: str, floor: float) -> None:
    """Stats arrive every 1-2 s while live; wait for the figure to pass `floor`."""
    console.wait_for_function(
        "([id, floor]) => Number(document.querySelector(id).dataset.value) > floor",
        arg=[f"#stat-{name}", floor],
        timeout=6 * UNIT_MS,
    )


def product_skus(page: Page) -> list[str]:
    expect(page.locator("#product-list li").first).to_be_visible()
    return page.locator("#product-list li").evaluate_all("rows => rows.map(r => r.dataset.sku)")


def my_order_count(viewer: Page) -> int:
    return (
        viewer.locator("#order-confirm .confirm").count()
        + viewer.locator("#my-order-list li").count()
    )


# ---- tests -----------------------------------------------------------------------------


def test_flash_sale_reaches_two_viewers_and_the_console(tab: Opener) -> None:
    """A deal started on the console shows on both phones within a second; one viewer buys
    and gets a pickup code, the other sees the units left drop, the console's orders and
    GMV go up, a double tap buys once, the per-person limit is explained, and no page logs
    an error."""
    console, console_log = tab(f"/console/{ROOM}", "console", width=1280)
    viewer_a, log_a = tab(f"/rooms/{ROOM}", "viewer A")
    viewer_b, log_b = tab(f"/rooms/{ROOM}", "viewer B")
    for page in (console, viewer_a, viewer_b):
        wait_connected(page)

    fresh_session(console, "今晚荔枝特价")
    clicked = time.monotonic()
    offer_id = start_offer(console, "lychee-500g", "9.90", qty=30, duration_s=120, limit=2)
    banner_a = viewer_a.locator(f".offer[data-offer='{offer_id}']")
    banner_b = viewer_b.locator(f".offer[data-offer='{offer_id}']")
    expect(banner_a).to_have_attribute("data-status", "live", timeout=UNIT_MS)
    expect(banner_b).to_have_attribute("data-status", "live", timeout=UNIT_MS)
    assert time.monotonic() - clicked < UNIT_MS / 1000 + 0.5  # the form's round trip too
    expect(banner_b.locator(".offer-price")).to_have_text("¥9.90")
    expect(banner_b.locator(".countdown")).to_have_text(re.compile(r"^[12]:\d\d$"))
    left = int(banner_b.get_attribute("data-left") or 0)
    orders_before, gmv_before = tile(console, "orders"), tile(console, "gmv")

    banner_a.locator(".offer-buy").click()
    expect(viewer_a.locator("#order-confirm .pickup-code")).to_have_text(re.compile(r"^\w{3,}$"))
    expect(viewer_a.locator("#order-confirm")).to_contain_text("取货码")
    expect(banner_b).to_have_attribute("data-left", str(left - 1))
    expect(banner_b.locator(".offer-left")).to_contain_text(str(left - 1))
    wait_tile_above(console, "orders", orders_before)
    wait_tile_above(console, "gmv", gmv_before)
    assert number(console.locator("#stat-gmv").inner_text()) > gmv_before / 100

    # A double tap is one purchase: the button is disabled while the answer is pending.
    buy_a = banner_a.locator(".offer-buy")
    expect(buy_a).to_be_enabled()
    buy_a.dblclick()
    expect(banner_b).to_have_attribute("data-left", str(left - 2))
    # The third unit is over the per-person limit of 2; the page says so in plain words.
    expect(buy_a).to_be_enabled()
    buy_a.click()
    expect(banner_a.locator(".row-msg")).to_have_text("已达到每人限购数量")
    expect(banner_b).to_have_attribute("data-left", str(left - 2))
    assert my_order_count(viewer_a) == 2

    errors = console_log.all() + log_a.all() + log_b.all()
    assert errors == []


def test_screenshots_at_phone_and_desktop_sizes(tab: Opener) -> None:
    """Both pages rendered live at 375×667 and 1280×800 (and in English), written to
    tests/artifacts/ for a person to look at; the English switch translates the chrome."""
    ARTIFACTS.mkdir(exist_ok=True)
    console, console_log = tab(f"/console/{ROOM}", "console", width=1280)
    viewer, viewer_log = tab(f"/rooms/{ROOM}", "viewer")
    wait_connected(console)
    wait_connected(viewer)
    ensure_live(console, "今晚荔枝特价 · 到店自提")
    skus = product_skus(viewer)
    console.locator(f"#stock-list li[data-sku='{skus[0]}'] .pin-btn").click()
    expect(viewer.locator("#pinned")).to_be_visible()
    if not viewer.locator(".offer[data-status='live']").count():
        start_offer(console, skus[0], "9.90", qty=50, duration_s=300, limit=2)
    expect(viewer.locator(".offer[data-status='live']").first).to_be_visible()

    viewer.fill("#chat-input", "荔枝今天到货的吗？")
    viewer.press("#chat-input", "Enter")
    expect(viewer.locator("#chat-list li.mine")).to_have_count(1)
    viewer.locator(f"#product-list li[data-sku='{skus[-1]}'] .buy").click()
    expect(viewer.locator("#order-confirm .pickup-code")).to_be_visible()
    wait_tile_above(console, "orders", 0)
    # A burst of likes on one product is the kind of thing the coach flags as "act now".
    like = viewer.locator(f"#product-list li[data-sku='{skus[0]}'] .like")
    for _ in range(200):  # taps closer than 150 ms are merged by the page: keep tapping
        if number(like.inner_text() or "0") >= 8:
            break
        like.click()
    expect(console.locator("#act-now")).to_be_visible(timeout=6 * UNIT_MS)
    # Two stats samples make a line on the chart.
    console.wait_for_function(
        "() => document.querySelectorAll('#chart polyline').length > 0", timeout=6 * UNIT_MS
    )

    def shoot(page: Page, name: str, width: int, height: int) -> None:
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_function("() => document.fonts.status === 'loaded'")
        out = ARTIFACTS / f"{name}-{width}x{height}.png"
        page.screenshot(path=str(out))
        page.screenshot(path=str(out.with_name(f"{out.stem}-full.png")), full_page=True)
        assert out.stat().st_size > 5_000
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways at {width}px"

    for width, height in ((375, 667), (1280, 800)):
        shoot(viewer, "viewer", width, height)
        shoot(console, "console", width, height)

    viewer.click("#lang-toggle")
    expect(viewer.locator("html")).to_have_attribute("lang", "en")
    expect(viewer.locator(".products h2")).to_have_text("All products")
    expect(viewer.locator("#order-confirm")).to_contain_text("Pickup code")
    wait_connected(viewer)  # the switch reconnects with lang=en and resumes
    console.click("#lang-toggle")
    expect(console.locator("#golive-title, #live-info").first).to_be_attached()
    expect(console.locator(".tile-label").first).to_have_text("Viewers")
    wait_connected(console)
    shoot(viewer, "viewer-en", 375, 667)
    shoot(console, "console-en", 375, 667)
    assert viewer_log.page_errors == []
    assert console_log.page_errors == []
    assert console_log.all() + viewer_log.all() == []


def test_viewer_reconnects_after_server_restart(server: LiveshopServer, tab: Opener) -> None:
    """The server restarts under an open viewer page: the page shows "reconnecting…",
    comes back by itself (same document, no reload) and shows stock changed afterwards."""
    viewer, viewer_log = tab(f"/rooms/{ROOM}", "viewer")
    console, _ = tab(f"/console/{ROOM}", "console", width=1280)
    wait_connected(viewer)
    wait_connected(console)
    viewer.evaluate("window.__sameDocument = true")

    server.stop()
    expect(viewer.locator("#conn-banner")).to_be_visible(timeout=3 * UNIT_MS)
    expect(viewer.locator("#conn-banner")).to_have_text("重新连接中…")
    server.start()
    # Backoff is capped at 5 s; allow for that plus the server's own start.
    wait_connected(viewer, timeout_ms=15 * UNIT_MS)
    wait_connected(console, timeout_ms=15 * UNIT_MS)
    expect(viewer.locator("#conn-banner")).to_be_hidden()

    sku = product_skus(viewer)[0]
    row = viewer.locator(f"#product-list li[data-sku='{sku}']")
    stock = int(row.get_attribute("data-stock") or 0)
    console.select_option("#restock-sku", sku)
    console.fill("#restock-qty", "7")
    console.click("#restock-btn")
    expect(row).to_have_attribute("data-stock", str(stock + 7))
    expect(row.locator(".stock")).to_contain_text(str(stock + 7))
    assert viewer.evaluate("window.__sameDocument") is True
    assert viewer_log.page_errors == []


def test_without_demo_tokens_viewer_may_watch_and_console_needs_its_link(
    browser: Browser, tmp_path: Path
) -> None:
    """Without the demo token endpoint a viewer watches anonymously and is told to sign in
    to buy; the console says a token is required, and works from a #token= link, which it
    removes from the address bar and keeps across a reload."""
    with running_server(tmp_path):
        pass  # a demo run leaves room s001 in the data directory
    with running_server(tmp_path, demo=False) as srv:
        viewer, viewer_log = open_page(browser, f"{srv.base_url}/rooms/{ROOM}", "viewer")
        bare, _ = open_page(browser, f"{srv.base_url}/console/{ROOM}", "console, no token")
        token = sign_token("owner-1", "broadcaster")
        console, console_log = open_page(
            browser, f"{srv.base_url}/console/{ROOM}#token={token}", "console, link"
        )
        try:
            wait_connected(viewer)
            expect(viewer.locator("#anon-note")).to_be_visible()
            buy = viewer.locator("#product-list .buy").first
            expect(buy).to_be_disabled()
            expect(buy).to_have_text("登录后购买")
            expect(viewer.locator("#chat-input")).to_be_disabled()

            expect(bare.locator("#fatal")).to_contain_text("需要主播令牌")

            wait_connected(console)
            expect(console.locator("#fatal")).to_be_hidden()
            assert "token=" not in console.url
            console.reload()
            wait_connected(console)
            expect(console.locator("#offer-start")).to_be_enabled()
            # The demo-token probe's 404 is how a page learns it is not on a demo server.
            probe_404 = "the server responded with a status of 404"
            errors = [e for e in viewer_log.all() + console_log.all() if probe_404 not in e]
            assert errors == []
        finally:
            for page in (viewer, bare, console):
                page.context.close()


# ---- the admin page --------------------------------------------------------------------


def open_admin(browser: Browser, base_url: str, width: int = 1280) -> tuple[Page, PageLog]:
    """/admin with an hq token from the demo endpoint; waits for the first refresh."""
    page, log = open_page(browser, f"{base_url}/admin", "admin", width=width, height=800)
    wait_connected(page)
    return page, log


def test_admin_lists_the_process_and_room_shows_messages_and_ends_an_offer(
    browser: Browser, tmp_path: Path
) -> None:
    """With writes on, /admin lists this server process and the demo room, shows the room's
    last messages on click (the offer just started among them), and ends that offer after a
    confirmation: the viewer's banner turns `ended`. Screenshots at 1280 and 375 px."""
    env = {"LIVESHOP_ADMIN_WRITE": "true", "LIVESHOP_HEARTBEAT_S": "0.5"}
    with running_server(tmp_path, env=env) as srv:
        console, console_log = open_page(browser, f"{srv.base_url}/console/{ROOM}", "console")
        viewer, viewer_log = open_page(browser, f"{srv.base_url}/rooms/{ROOM}", "viewer")
        admin, admin_log = open_admin(browser, srv.base_url)
        try:
            wait_connected(console)
            wait_connected(viewer)
            ensure_live(console, "今晚荔枝特价")
            offer_id = start_offer(console, "lychee-500g", "9.90", qty=20, duration_s=300, limit=2)
            banner = viewer.locator(f".offer[data-offer='{offer_id}']")
            expect(banner).to_have_attribute("data-status", "live")

            assert srv.proc is not None
            expect(admin.locator(f"#proc-rows tr[data-pid='{srv.proc.pid}']")).to_be_visible()
            expect(admin.locator("#write-badge")).to_have_attribute("data-write", "true")
            row = admin.locator(f"#room-rows tr[data-room='{ROOM}']")
            expect(row).to_have_attribute("data-live", "true")
            # The heartbeat counts the console's and the viewer's sockets (every 0.5 s here).
            expect(
                admin.locator(f"#proc-rows tr[data-pid='{srv.proc.pid}'] td").nth(5)
            ).to_have_text(re.compile(r"^[2-9]$"), timeout=5 * UNIT_MS)
            row.locator(".show-messages").click()
            expect(admin.locator("#room-detail")).to_be_visible()
            expect(admin.locator("#msg-list li[data-type='offer']").last).to_contain_text(offer_id)
            expect(admin.locator("#conn-list li[data-kind='console']")).to_have_count(1)
            expect(admin.locator("#conn-list li[data-kind='viewer'] .disconnect")).to_have_count(1)

            chip = row.locator(f".chip[data-offer='{offer_id}']")
            shoot_admin(admin, "admin", 1280, 800)
            chip.locator(".end-offer").click()
            expect(admin.locator("#confirm")).to_be_visible()
            expect(admin.locator("#confirm-text")).to_contain_text(offer_id)
            admin.click("#confirm-cancel")  # a second thought changes nothing
            expect(banner).to_have_attribute("data-status", "live")
            chip.locator(".end-offer").click()
            admin.click("#confirm-ok")
            expect(banner).to_have_attribute("data-status", "ended", timeout=2 * UNIT_MS)
            expect(chip).to_have_count(0, timeout=4 * UNIT_MS)  # the next refresh drops it
            expect(admin.locator("#msg-list li[data-type='offer']").last).to_contain_text(
                "status=ended", timeout=4 * UNIT_MS
            )
            shoot_admin(admin, "admin", 375, 667)
            admin.click("#lang-toggle")
            expect(admin.locator("#proc-h")).to_have_text("Server processes")
            shoot_admin(admin, "admin-en", 375, 667)
            assert console_log.all() + viewer_log.all() + admin_log.all() == []
        finally:
            for page in (console, viewer, admin):
                page.context.close()


def test_admin_is_read_only_unless_writes_are_enabled(
    browser: Browser, server: LiveshopServer
) -> None:
    """On a server without LIVESHOP_ADMIN_WRITE the page shows the figures and no actions."""
    admin, log = open_admin(browser, server.base_url, width=375)
    try:
        expect(admin.locator("#write-badge")).to_have_attribute("data-write", "false")
        expect(admin.locator("#write-badge")).to_have_text("只读")
        expect(admin.locator("#proc-rows tr")).to_have_count(1)
        admin.locator(f"#room-rows tr[data-room='{ROOM}'] .show-messages").click()
        expect(admin.locator("#msg-list li[data-seq]").first).to_be_visible()
        assert admin.locator(".end-offer, .disconnect").count() == 0
        assert log.all() == []
    finally:
        admin.context.close()


def test_admin_without_an_hq_token_says_so(browser: Browser, server: LiveshopServer) -> None:
    """A viewer's token from a link is refused by the admin API: the page says it needs hq."""
    viewer_token = sign_token("u-9", "viewer")
    page, _ = open_page(browser, f"{server.base_url}/admin#token={viewer_token}", "admin, viewer")
    try:
        expect(page.locator("#fatal")).to_contain_text("总部")
        assert "token=" not in page.url
    finally:
        page.context.close()


def shoot_admin(page: Page, name: str, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / f"{name}-{width}x{height}.png"
    page.screenshot(path=str(out))
    page.screenshot(path=str(out.with_name(f"{out.stem}-full.png")), full_page=True)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} scrolls sideways at {width}px"


# ---- what a new user met (the operations issue) -----------------------------------------

# Every element of a product row that must stay readable; none may be drawn over another.
ROW_PARTS = (".product-name", ".price", ".stock", ".like", ".buy")
OVERLAPS_JS = """parts => {
  const problems = [];
  for (const row of document.querySelectorAll('#pinned-body .product, #product-list .product')) {
    const where = (row.closest('#pinned') ? 'pinned ' : 'list ') + row.dataset.sku;
    const card = row.getBoundingClientRect();
    const boxes = parts.map(sel => [sel, row.querySelector(sel).getBoundingClientRect()]);
    for (const [sel, b] of boxes) {
      if (b.width === 0 || b.height === 0) problems.push(`${where}: ${sel} is not shown`);
      if (b.left < card.left - 0.5 || b.right > card.right + 0.5) {
        problems.push(`${where}: ${sel} sticks out of its row`);
      }
    }
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [sa, a] = boxes[i], [sb, b] = boxes[j];
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0.5 && h > 0.5) problems.push(`${where}: ${sa} overlaps ${sb}`);
      }
    }
  }
  return problems;
}"""


def put_product(base_url: str, sku: str, name: str, price: int, stock: int) -> None:
    """As HQ's system would: PUT a product into room s001 over the REST API."""
    body = json.dumps({"name": name, "price": price, "stock": stock}).encode()
    req = urllib.request.Request(
        f"{base_url}/api/rooms/{ROOM}/products/{sku}",
        data=body,
        method="PUT",
        headers={
            "Authorization": f"Bearer {sign_token('hq-1', 'hq', room='*')}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def test_product_price_name_and_buttons_never_overlap_on_small_phones(
    browser: Browser, tmp_path: Path
) -> None:
    """The pinned card and every product row at 375×667 and 320×568, in Chinese and English,
    live and not live, with a four-digit price and a liked product: the name, price, stock,
    heart and buy button of each row never intersect and stay inside the row. Screenshots
    go to tests/artifacts/viewer-narrow-*.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(tmp_path) as srv:
        put_product(srv.base_url, "durian-gift", "泰国金枕榴莲 特大果 礼盒装", 128_800, 9)
        console, console_log = open_page(browser, f"{srv.base_url}/console/{ROOM}", "console")
        viewer, viewer_log = open_page(browser, f"{srv.base_url}/rooms/{ROOM}", "viewer")
        try:
            wait_connected(console)
            wait_connected(viewer)
            ensure_live(console, "今晚榴莲专场")
            console.locator("#stock-list li[data-sku='durian-gift'] .pin-btn").click()
            pinned = viewer.locator("#pinned-body .product[data-sku='durian-gift']")
            expect(pinned.locator(".price")).to_have_text("¥1,288.00")
            like = pinned.locator(".like")
            for _ in range(100):  # a liked product shows its count beside the heart
                if number(like.inner_text() or "0") >= 12:
                    break
                like.click()
            problems: list[str] = []
            for live in (True, False):
                if not live:
                    console.click("#endlive-btn")
                    console.click("#endlive-btn")
                    expect(console.locator("#live-badge")).to_have_attribute("data-live", "false")
                    # Ending the session unpins; pin again to see the card's longest labels.
                    console.locator("#stock-list li[data-sku='durian-gift'] .pin-btn").click()
                    expect(pinned.locator(".buy")).to_have_text("开播后可买")
                for lang in ("zh-CN", "en"):
                    if lang == "en":
                        viewer.click("#lang-toggle")
                        expect(viewer.locator("html")).to_have_attribute("lang", "en")
                    for width, height in ((375, 667), (320, 568)):
                        viewer.set_viewport_size({"width": width, "height": height})
                        viewer.evaluate("document.fonts.ready")
                        found = viewer.evaluate(OVERLAPS_JS, list(ROW_PARTS))
                        problems += [f"{width}px {lang} live={live}: {p}" for p in found]
                        name = f"viewer-narrow-{'live' if live else 'off'}-{lang}-{width}x{height}"
                        viewer.locator("#pinned").scroll_into_view_if_needed()
                        viewer.screenshot(path=str(ARTIFACTS / f"{name}.png"))
                        viewer.screenshot(path=str(ARTIFACTS / f"{name}-full.png"), full_page=True)
                        overflow = viewer.evaluate(
                            "() => document.documentElement.scrollWidth"
                            " - document.documentElement.clientWidth"
                        )
                        assert overflow <= 0, f"viewer scrolls sideways at {width}px"
                if lang == "en":
                    viewer.click("#lang-toggle")  # back to Chinese for the next round
                    expect(viewer.locator("html")).to_have_attribute("lang", "zh-CN")
            assert problems == []
            assert console_log.all() + viewer_log.all() == []
        finally:
            for page in (console, viewer):
                page.context.close()


def test_refusals_are_shown_in_the_pages_language_not_the_servers_english(
    tab: Opener,
) -> None:
    """The server's `error.message` is English for developers: the console says why a deal
    did not start in Chinese (or English after the switch) from the code, its `ref` and its
    own state; the viewer turns codes it knows into its own words too (here codes the demo
    server never sends, injected on the socket: `muted`, `too_many_unpaid`)."""
    console, console_log = tab(f"/console/{ROOM}", "console", width=1280)
    wait_connected(console)
    if console.locator("#live-info").is_visible():
        console.click("#endlive-btn")
        console.click("#endlive-btn")
        expect(console.locator("#live-badge")).to_have_attribute("data-live", "false")
    # off air: the console links to the review of the session that ended
    expect(console.locator("#report-link")).to_have_attribute(
        "href", re.compile(rf"^/report/{ROOM}/ls_[0-9a-f]+$")
    )
    console.fill("#offer-price", "9.90")
    console.click("#offer-start")  # not live: the server refuses (bad_message, in English)
    toast = console.locator("#toast")
    expect(toast).to_have_text("秒杀没有开始：请先开播，再发起秒杀")
    console.click("#lang-toggle")
    wait_connected(console)
    console.click("#offer-start")
    expect(toast).to_have_text("The deal didn't start: go live first")
    expect(toast).not_to_contain_text("before starting an offer")  # the server's own words

    viewer, viewer_log = tab(f"/rooms/{ROOM}", "viewer")

    def answer_for_the_server(ws: WebSocketRoute) -> None:
        server_side = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            msg = json.loads(message)
            if msg["type"] == "chat":
                muted = {"code": "muted", "ref": "chat", "message": "you are muted until 17:00"}
                ws.send(json.dumps({"type": "error", **muted}))
            elif msg["type"] == "buy":
                ack = {k: msg[k] for k in ("request_id", "sku", "qty")}
                ws.send(
                    json.dumps(
                        {
                            "type": "order_ack",
                            **ack,
                            "status": "rejected",
                            "reason": "too_many_unpaid",
                        }
                    )
                )
            else:
                server_side.send(message)

        ws.on_message(from_page)

    viewer.route_web_socket(re.compile(r"/ws/rooms/"), answer_for_the_server)
    viewer.reload()
    wait_connected(viewer)
    viewer.fill("#chat-input", "还有荔枝吗")
    viewer.press("#chat-input", "Enter")
    expect(viewer.locator("#toast")).to_have_text("你已被禁言，暂时不能发言")
    ensure_live(console, "今晚荔枝特价")
    buy = viewer.locator("#product-list .product .buy").first
    expect(buy).to_be_enabled()
    buy.click()
    expect(viewer.locator("#product-list .product .row-msg").first).to_have_text(
        "你有 3 笔订单还没付款，请先付款或取消"
    )
    assert console_log.all() + viewer_log.all() == []


def test_act_now_banner_goes_when_what_it_urges_is_over(browser: Browser, tmp_path: Path) -> None:
    """An act_now banner about an offer goes when that offer is stopped; one about a product
    goes when the session ends; and any banner goes after 60 s (the page's clock is driven
    by Playwright for that), while the hint stays in the list."""
    with running_server(tmp_path) as srv:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
        context.clock.install()  # real time flows; fast_forward jumps it for the 60 s rule
        console = context.new_page()
        console.set_default_timeout(5 * UNIT_MS)
        console_log = PageLog("console")
        console.on("pageerror", lambda e: console_log.page_errors.append(str(e)))
        console.goto(f"{srv.base_url}/console/{ROOM}")
        viewer, viewer_log = open_page(browser, f"{srv.base_url}/rooms/{ROOM}", "viewer")
        banner = console.locator("#act-now")
        try:
            wait_connected(console)
            wait_connected(viewer)
            fresh_session(console, "今晚荔枝特价")

            # offer_ending fires with under 15 s left: a 20 s deal gets it after ~5 s.
            offer_id = start_offer(console, "mango-2pc", "9.90", qty=20, duration_s=20, limit=2)
            expect(banner).to_be_visible(timeout=10 * UNIT_MS)
            expect(console.locator("#act-now-text")).to_contain_text("秒杀还剩")
            console.locator(f"#offer-list .offer-row[data-offer='{offer_id}'] .stop-btn").click()
            expect(banner).to_be_hidden(timeout=2 * UNIT_MS)
            expect(console.locator("#hint-list li[data-code='offer_ending']")).to_have_count(1)

            def likes_until_banner(sku: str, taps: int) -> None:
                like = viewer.locator(f"#product-list li[data-sku='{sku}'] .like")
                for _ in range(300):  # taps closer than 150 ms are merged by the page
                    if number(like.inner_text() or "0") >= taps:
                        break
                    like.click()
                expect(console.locator("#act-now-text")).to_contain_text(
                    "互动很高", timeout=6 * UNIT_MS
                )
                expect(banner).to_be_visible()

            likes_until_banner("lychee-500g", 8)
            console.click("#endlive-btn")
            console.click("#endlive-btn")
            expect(console.locator("#live-badge")).to_have_attribute("data-live", "false")
            expect(banner).to_be_hidden(timeout=2 * UNIT_MS)

            fresh_session(console, "第二场")
            likes_until_banner("eggs-10", 16)  # more than lychee's taps, to be the top SKU
            console.clock.fast_forward(61_000)
            expect(banner).to_be_hidden(timeout=3 * UNIT_MS)
            expect(console.locator("#hint-list li[data-code='focus_product']")).to_have_count(2)
            assert console_log.page_errors == [] and viewer_log.all() == []
        finally:
            viewer.context.close()
            context.close()
