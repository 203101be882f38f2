"""Orders after the tap in headless Chromium against `liveshop serve --demo`: a buyer
pays in the pay-first store, the store page marks the order ready, the counter verifies
its code, and the buyer's 我的订单 panel follows every step without a reload; at
375×667 with screenshots under tests/artifacts/ (looked at by a person)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator

import pytest

from tests.pages_support import (
    ARTIFACTS,
    UNIT_MS,
    LiveshopServer,
    PageLog,
    require_browser,
    running_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAID_ROOM = "s002"  # the demo's pay-first store (liveshop/app/demo.py)
Opener = Callable[..., "tuple[Page, PageLog]"]  # the `tab` fixture (tests/app/conftest.py)

with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveshopServer]:
    require_browser()
    with running_server(tmp_path_factory.mktemp("liveshop-store-pages")) as srv:
        yield srv


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def http_errors_only(log: PageLog) -> list[str]:
    """Console errors except the browser's own line for a 4xx answer the page handles
    (it shows 已取过 / 不是本店的码 for a 409 / 404; Chromium logs the status anyway)."""
    return [e for e in log.all() if "Failed to load resource" not in e]


def test_buy_pay_ready_verify_and_the_buyer_sees_each_step(tab: Opener) -> None:
    viewer, viewer_log = tab(f"/rooms/{PAID_ROOM}", "viewer")
    store, store_log = tab(f"/store/{PAID_ROOM}", "store")
    for page in (viewer, store):
        expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=5 * UNIT_MS)

    viewer.locator("#product-list li[data-sku='lychee-500g'] button.buy").click()
    card = viewer.locator("#my-orders li.order-card").first
    expect(viewer.locator("#my-orders-tab")).to_be_visible()
    viewer.click("#my-orders-tab")
    expect(card).to_have_attribute("data-state", "awaiting_payment")
    order_id = card.get_attribute("data-order-id")
    assert order_id
    mine = viewer.locator(f"#my-orders li.order-card[data-order-id='{order_id}']")
    expect(mine.locator(".pay-countdown")).to_have_text(re.compile(r"\d{1,2}:\d\d"))
    shot(viewer, "store-flow-1-awaiting-payment-375")

    mine.locator("[data-action='pay']").click()  # the demo's stand-in provider, signed
    expect(mine).to_have_attribute("data-state", "paid")
    code = mine.locator(".pickup-code").inner_text().strip()
    assert re.fullmatch(r"\d{6}", code), code
    expect(mine.locator("img.pickup-qr")).to_be_visible()

    # The store: the paid order is on the board; mark it ready.
    board_card = store.locator(f".order-card[data-order-id='{order_id}']")
    expect(board_card).to_have_attribute("data-state", "paid", timeout=5 * UNIT_MS)
    shot(store, "store-flow-2-board-375")
    board_card.locator("[data-action='ready']").click()
    expect(mine).to_have_attribute("data-state", "ready")

    # The counter: a code of another store first, then the right one, then again.
    store.fill("#code-input", "000000" if code != "000000" else "000001")
    result = store.locator("#verify-result")
    expect(result).to_have_attribute("data-result", "not_found")
    expect(result).to_contain_text("不是本店的码")
    store.fill("#code-input", code)
    expect(result).to_have_attribute("data-result", "verified")
    expect(result).to_contain_text("取货成功")
    shot(store, "store-flow-3-verified-375")
    expect(mine).to_have_attribute("data-state", "picked_up")
    expect(mine).to_contain_text("已取货")
    shot(viewer, "store-flow-4-picked-up-375")
    store.fill("#code-input", code)
    expect(result).to_have_attribute("data-result", "already_verified")
    expect(result).to_contain_text("已取过")
    shot(store, "store-flow-5-already-375")

    # A reload keeps the buyer's orders (from welcome and /api/me/orders).
    viewer.reload()
    expect(viewer.locator("body")).to_have_attribute("data-conn", "open", timeout=5 * UNIT_MS)
    viewer.click("#my-orders-tab")
    expect(mine).to_have_attribute("data-state", "picked_up")

    assert viewer_log.all() == []
    assert http_errors_only(store_log) == []


def test_a_buyer_cancels_and_the_units_come_back(tab: Opener) -> None:
    viewer, viewer_log = tab(f"/rooms/{PAID_ROOM}", "viewer-cancel")
    expect(viewer.locator("body")).to_have_attribute("data-conn", "open", timeout=5 * UNIT_MS)
    row = viewer.locator("#product-list li[data-sku='mango-2pc']")
    before = int(row.get_attribute("data-stock") or -1)
    row.locator("button.buy").click()
    viewer.click("#my-orders-tab")
    card = viewer.locator("#my-orders li.order-card[data-state='awaiting_payment']").first
    expect(card).to_be_visible()
    order_id = card.get_attribute("data-order-id")  # before the cancel changes its state
    card.locator("[data-action='cancel']").click()
    cancelled = viewer.locator(f"#my-orders li.order-card[data-order-id='{order_id}']")
    expect(cancelled).to_have_attribute("data-state", "cancelled")
    if before >= 0:
        expect(row).to_have_attribute("data-stock", str(before))
    assert viewer_log.all() == []


def test_two_viewers_join_a_group_and_everyone_sees_it_succeed(tab: Opener) -> None:
    """The console starts a group of 2; two phones join; the bar moves on both pages and
    the console, the group succeeds, both buyers see 已成团 and their orders go through."""
    console, console_log = tab("/console/s001", "console-group", width=1280)
    viewer_a, log_a = tab("/rooms/s001", "viewer-group-a")
    viewer_b, log_b = tab("/rooms/s001", "viewer-group-b")
    for page in (console, viewer_a, viewer_b):
        expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=5 * UNIT_MS)
    if not console.locator("#live-info").is_visible():
        console.fill("#golive-title", "拼团之夜")
        console.click("#golive-btn")
        expect(console.locator("#live-badge")).to_have_attribute("data-live", "true")
    before = set(
        console.locator("#group-list .group-row").evaluate_all(
            "rows => rows.map(r => r.dataset.groupId)"
        )
    )
    console.select_option("#group-sku", "mango-2pc")
    console.fill("#group-price", "12.90")
    console.fill("#group-threshold", "2")
    console.fill("#group-duration", "30")
    console.fill("#group-cap", "10")
    console.fill("#group-limit", "2")
    console.click("#group-start")
    handle = console.wait_for_function(
        """before => [...document.querySelectorAll('#group-list .group-row')]
                      .map(r => r.dataset.groupId).find(id => !before.includes(id)) || null""",
        arg=sorted(before),
    )
    group_id = str(handle.json_value())
    row = console.locator(f"#group-list .group-row[data-group-id='{group_id}']")
    card_a = viewer_a.locator(f".group-card[data-group-id='{group_id}']")
    card_b = viewer_b.locator(f".group-card[data-group-id='{group_id}']")
    expect(card_a).to_have_attribute("data-status", "open")
    expect(card_b.locator(".group-need")).to_contain_text("还差 2 人成团")
    viewer_a.screenshot(path=str(ARTIFACTS / "group-1-open-375.png"), full_page=True)

    card_a.locator(".group-join").click()
    expect(card_b).to_have_attribute("data-value", "1")  # the bar moved on the other phone
    expect(row).to_have_attribute("data-value", "1")
    expect(card_b.locator(".group-need")).to_contain_text("还差 1 人成团")
    card_b.locator(".group-join").click()
    for card in (card_a, card_b):
        expect(card).to_have_attribute("data-status", "succeeded")
        expect(card).to_contain_text("已成团")
        expect(card.locator(".group-mine")).to_have_attribute("data-mine", "succeeded")
    expect(row).to_have_attribute("data-status", "succeeded")
    viewer_b.screenshot(path=str(ARTIFACTS / "group-2-succeeded-375.png"), full_page=True)
    console.screenshot(path=str(ARTIFACTS / "group-3-console-1280.png"), full_page=True)
    assert log_a.all() + log_b.all() + console_log.all() == []
