"""The dashboard page in headless Chromium against `liveshop serve --demo` with a history
written into its order database: a store's figures, its customers' tags (a tap shows the
rule), the suggestions with their forecast range, English, and HQ's chain page with every
store and a link into one; screenshots at 375 px and 1280 px under tests/artifacts/."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from liveshop.engine.database import open_database, sqlite_url
from tests.insights_support import DAY, HOUR, add_catalog, add_order, add_session
from tests.pages_support import (
    ARTIFACTS,
    UNIT_MS,
    LiveshopServer,
    PageLog,
    require_browser,
    running_server,
    sign_token,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

Opener = Callable[..., "tuple[Page, PageLog]"]  # the `tab` fixture (tests/app/conftest.py)

with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect

NOW = int(time.time() * 1000)
REGION = "beijing-chaoyang"  # the demo's s002; s001 joins it below
S001_GMV = 4 * 2 * 1690 + 2 * 3 * 1150 + 1590  # 王's lychees, 李's milk, 张's mango


async def seed(server: LiveshopServer) -> None:
    """Five ended sessions of s001 (days 20, 6, 4, 2, 1 ago) and two of s002, written as
    the app writes them; s001's customers: 王阿姨 frequent, fruit-loving and price-
    sensitive (lychees at an offer in 4 of 5), 李先生 buys milk twice, 小张 once."""
    db = await open_database(sqlite_url(server.data_dir / "liveshop.db"))
    try:
        for sku, name, category, base in (
            ("lychee-500g", "岭南荔枝 500g", "水果", 1990),
            ("mango-2pc", "海南贵妃芒 2个装", "水果", 1590),
            ("milk-1l", "鲜牛奶 1L", "乳品", 1150),
            ("durian-1kg", "泰国金枕榴莲 1kg", "水果", 8800),
        ):
            await add_catalog(db, sku, category, base, NOW - 90 * DAY, name=name)
        s001 = ((20, 60), (6, 80), (4, 100), (2, 120), (1, 90))
        for days, viewers in s001:
            await add_session(db, "s001", f"d-{days}", NOW - days * DAY, viewers=viewers)
        for days, viewers in ((5, 150), (3, 200)):
            await add_session(db, "s002", f"p-{days}", NOW - days * DAY, viewers=viewers)

        async def buy(
            room: str, sid: str, days: int, user: str, sku: str, qty: int, price: int, **kw: str
        ) -> None:
            await add_order(db, room, sid, user, sku, qty, price, NOW - days * DAY + HOUR, **kw)

        for days in (20, 6, 4, 1):
            await buy("s001", f"d-{days}", days, "u-wang", "lychee-500g", 2, 1690, offer_id="o-1")
        for days in (6, 2):
            await buy("s001", f"d-{days}", days, "u-li", "milk-1l", 3, 1150)
        await buy("s001", "d-4", 4, "u-zhang", "mango-2pc", 1, 1590)
        await buy("s001", "d-1", 1, "u-zhang", "mango-2pc", 1, 1590, state="cancelled")
        await buy("s002", "p-5", 5, "u-zhao", "durian-1kg", 4, 8800)
        await buy("s002", "p-3", 3, "u-qian", "durian-1kg", 6, 8800)
    finally:
        await db.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveshopServer]:
    require_browser()
    with running_server(tmp_path_factory.mktemp("liveshop-dashboard")) as srv:
        body = json.dumps({"name": "鲜果社区店·望京店", "region": REGION}).encode()
        req = urllib.request.Request(
            f"{srv.base_url}/api/rooms/s001",
            data=body,
            method="PUT",
            headers={
                "Authorization": f"Bearer {sign_token('hq-1', 'hq', '*')}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
        # On a thread of its own: Playwright's sync API keeps an event loop on this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, seed(srv)).result()
        yield srv


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar where it belongs
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def ready(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-state", "ready", timeout=5 * UNIT_MS)


def tile(page: Page, name: str) -> str:
    return page.locator(f"#stat-{name}").get_attribute("data-value") or ""


def test_a_store_sees_its_figures_tags_and_suggestions(tab: Opener) -> None:
    page, log = tab("/dashboard/s001", "store-dashboard")
    ready(page)
    # all five ended sessions (the demo's live session is not counted yet)
    assert tile(page, "sessions") == "5"
    assert tile(page, "viewers") == str(60 + 80 + 100 + 120 + 90)
    assert tile(page, "orders") == "7"  # 小张's cancelled mango does not count
    assert tile(page, "gmv") == str(S001_GMV)
    assert tile(page, "repurchase") == str(round(2 / 3, 4))
    # buyers per session, added up (王 4, 李 2, 张 1) over viewers added up
    assert page.locator("#stat-conversion .tile-value").inner_text() == "1.6%"
    customers = page.locator("#cust-list li.cust")
    expect(customers).to_have_count(3)
    assert customers.evaluate_all("rows => rows.map(r => r.dataset.user)") == [
        "u-wang",
        "u-li",
        "u-zhang",
    ]
    wang = customers.first
    chips = wang.locator(".tag-chip")
    expect(chips).to_have_text(["高频购买", "品类偏好:水果", "价格敏感"])
    rule = wang.locator(".rule").nth(0)
    expect(rule).to_be_hidden()
    assert (
        chips.nth(0).get_attribute("title")
        == "近 5 场直播中有 4 场下单（规则：近 5 场中至少 3 场）"
    )
    chips.nth(0).click()
    expect(rule).to_be_visible()
    expect(rule).to_have_text("近 5 场直播中有 4 场下单（规则：近 5 场中至少 3 场）")
    expect(chips.nth(0)).to_have_attribute("aria-expanded", "true")
    # suggestions for an audience of 90 (the median): durian from the region's s002 (4/150
    # and 6/200 per viewer: 2.4-2.7, median 2.55), then the store's own lychees (2/90)
    suggestions = page.locator("#suggest-list li.suggest")
    skus = suggestions.evaluate_all("rows => rows.map(r => r.dataset.sku)")
    assert skus == ["durian-1kg", "lychee-500g", "milk-1l"]  # mango: 0-0, left out
    expect(page.locator("#suggest-audience")).to_have_text("预计观众 90 人（近几场的中位数）")
    durian = suggestions.first
    expect(durian.locator(".reason")).to_have_text(
        "同区域 1 家门店近 7 天售出 10 件，本店近 5 场未售出"
    )
    expect(durian.locator(".expected")).to_have_text("预计 3 件")
    expect(durian.locator(".range-text")).to_have_text("2–3 件")
    expect(durian.locator(".badge.listed")).to_have_text("已上架")
    durian.locator(".why-btn").click()
    expect(durian.locator(".rule")).to_contain_text("每百位观众买")
    expect(page.locator("#sess-rows tr")).to_have_count(5)
    shot(page, "dashboard-store-375")

    page.click("#lang-toggle")
    expect(chips).to_have_text(["Frequent buyer", "Prefers 水果", "Price-sensitive"])
    expect(page.locator("#dash-title")).to_have_text("Store dashboard")
    expect(durian.locator(".expected")).to_have_text("Expect 3")
    page.click("#lang-toggle")

    page.click(".range-btn[data-range='7']")
    ready(page)
    expect(page.locator("#stat-sessions")).to_have_attribute("data-value", "4")
    assert "days=7" in page.url
    assert log.all() == []


def test_hq_compares_every_store_and_opens_one(tab: Opener) -> None:
    page, log = tab("/dashboard", "chain-dashboard", width=1280)
    ready(page)
    expect(page.locator("#dash-title")).to_have_text("总部经营看板")
    rows = page.locator("#stores-rows tr")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.room)") == ["s002", "s001"]
    assert tile(page, "gmv") == str(10 * 8800 + S001_GMV)
    assert tile(page, "buyers") == "5"
    expect(page.locator("#suggest-card")).to_be_hidden()
    expect(page.locator("#customers-card")).to_be_hidden()
    shot(page, "dashboard-chain-1280")
    page.locator("#stores-rows tr[data-room='s001'] a").click()
    ready(page)
    expect(page.locator("#dash-title")).to_have_text("门店经营看板")
    assert "#token" not in page.url  # taken into storage, off the address bar
    expect(page.locator("#stat-sessions")).to_have_attribute("data-value", "5")
    shot(page, "dashboard-store-1280")
    assert log.all() == []


def test_a_viewer_token_is_refused_in_words(tab: Opener) -> None:
    viewer = sign_token("v-1", "viewer")
    page, _ = tab(f"/dashboard/s001#token={viewer}", "dashboard-viewer")
    expect(page.locator("#fatal")).to_have_text("这个令牌不能查看本页。")
    expect(page.locator("body")).to_have_attribute("data-state", "error")
