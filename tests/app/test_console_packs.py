"""The console with HQ's campaign packs and price bands, in headless Chromium against a real
`liveshop serve --demo`: HQ puts a catalog SKU, a band and packs over REST; the console's
picker lists the packs, the preview shows their changes and conflicts (a blocking one
disables 开播), a band narrowed behind its back is refused by the server and said so,
going live with the pack shows the teleprompter, which steps and survives a reload, and
the pack's offer starts on the schedule; the band shows under the price fields and an
out-of-band price marks the field. Screenshots under tests/artifacts/ for a person."""

from __future__ import annotations

import contextlib
import json
import re
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.pages_support import (
    ARTIFACTS,
    ROOM,
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

LYCHEE, POMELO, MANGO = "lychee-500g", "pomelo-1", "mango-2pc"
BAND = {"scope": f"store:{ROOM}", "floor": 1500, "ceiling": 2500}
SCRIPT = [
    "开场：街坊们晚上好，今晚是周末水果节！",
    "荔枝：现摘空运，今晚 16.90 一斤，限时十分钟",
    "收尾：明天到店自提，记得带上取货码",
]
GOOD_PACK: dict[str, Any] = {
    "title": "周末水果节",
    "title_en": "Weekend fruit fair",
    "products": [{"sku": POMELO, "stock": 40}, {"sku": LYCHEE, "price": 1890, "stock": 20}],
    "offers": [
        {"sku": LYCHEE, "price": 1690, "qty": 10, "per_user_limit": 2, "duration_s": 600},
        # 100 > the 40 pomelos the pack brings: a warning, skipped when its time comes
        {
            "sku": POMELO,
            "price": 990,
            "qty": 100,
            "per_user_limit": 1,
            "duration_s": 60,
            "at_s": 900,
        },
    ],
    "script": SCRIPT,
}
# ¥9.90 is below the band's floor: the preview says so and 开播 waits.
CLEARANCE_PACK: dict[str, Any] = {
    "title": "清仓特卖",
    "offers": [{"sku": LYCHEE, "price": 990, "qty": 5, "per_user_limit": 1, "duration_s": 60}],
}


def hq(base_url: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A call of HQ's system to the REST API (role hq, every room)."""
    req = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {sign_token('hq-1', 'hq', room='*')}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        answer: dict[str, Any] = json.load(r)
        return answer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveshopServer]:
    require_browser()
    with running_server(tmp_path_factory.mktemp("liveshop-console-packs")) as srv:
        item = {"name": "福建红心柚 1个", "name_en": "Red pomelo", "category": "fruit"}
        hq(srv.base_url, "PUT", f"/api/catalog/{POMELO}", {**item, "base_price": 1290})
        hq(srv.base_url, "PUT", f"/api/bands/{LYCHEE}", BAND)
        hq(srv.base_url, "PUT", "/api/packs/fruit-fair", GOOD_PACK)
        hq(srv.base_url, "PUT", "/api/packs/clearance", CLEARANCE_PACK)
        yield srv


def shot(page: Page, name: str) -> None:
    """The whole page from the top (the sticky top bar stays where it belongs)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_connected(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=5 * UNIT_MS)


def off_air(console: Page) -> None:
    """The demo room starts live: end the session (two taps) to see the go-live form."""
    if console.locator("#live-info").is_visible():
        console.click("#endlive-btn")
        console.click("#endlive-btn")
    expect(console.locator("#live-badge")).to_have_attribute("data-live", "false")


def choose(console: Page, pack_id: str) -> None:
    """Pick a pack and wait for its preview."""
    console.select_option("#golive-pack", pack_id)
    expect(console.locator("#pack-preview")).to_have_attribute("data-state", "ready")


def test_go_live_with_a_pack_from_preview_to_teleprompter(
    server: LiveshopServer, tab: Opener
) -> None:
    console, log = tab(f"/console/{ROOM}", "console", width=1280)
    wait_connected(console)
    off_air(console)
    picker = console.locator("#golive-pack")
    go = console.locator("#golive-btn")
    preview = console.locator("#pack-preview")

    # The picker lists HQ's packs after "no pack"; without a pack 开播 is plain.
    expect(console.locator("#pack-field")).to_be_visible()
    expect(picker.locator("option")).to_have_count(3)
    values = picker.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert values == ["", "clearance", "fruit-fair"]
    expect(picker.locator("option[value='fruit-fair']")).to_have_text("周末水果节 · 第 1 版")
    expect(go).to_have_text("开播")
    expect(preview).to_be_hidden()

    # A pack whose deal is below the band: the conflict in red, 开播 disabled.
    choose(console, "clearance")
    blocking = preview.locator(".pack-conflict[data-kind='out_of_band']")
    expect(blocking).to_have_attribute("data-blocking", "true")
    expect(blocking).to_contain_text("¥9.90")
    expect(blocking).to_contain_text("HQ 价格带 ¥15.00–¥25.00")
    expect(console.locator("#pack-blocked")).to_be_visible()
    expect(go).to_be_disabled()
    shot(console, "console-packs-1-blocked-1280")

    # The good pack: every change, a non-blocking warning, 开播 with this pack allowed.
    choose(console, "fruit-fair")
    changes = preview.locator(".pack-change")
    expect(changes).to_have_text(
        [
            "上架 福建红心柚 1个 · ¥12.90",
            "福建红心柚 1个 库存 0 → 40",
            "岭南荔枝 500g 价格 ¥19.90 → ¥18.90",
            "岭南荔枝 500g 库存 200 → 220",
            "岭南荔枝 500g 秒杀 ¥16.90 · 开播即开始",
            "福建红心柚 1个 秒杀 ¥9.90 · 开播后 +15 分 0 秒",
        ]
    )
    warning = preview.locator(".pack-conflict")
    expect(warning).to_have_count(1)
    expect(warning).to_have_attribute("data-kind", "short_stock")
    expect(warning).to_have_attribute("data-blocking", "false")
    expect(console.locator("#pack-blocked")).to_be_hidden()
    expect(go).to_be_enabled()
    expect(go).to_have_text("用这个主题包开播")
    expect(console.locator("#golive-title")).to_have_attribute(
        "placeholder", "不填就用主题包的标题：周末水果节"
    )
    shot(console, "console-packs-2-preview-1280")
    console.set_viewport_size({"width": 375, "height": 667})
    console.locator(".live-control").screenshot(
        path=str(ARTIFACTS / "console-packs-2-preview-375.png")
    )
    console.set_viewport_size({"width": 1280, "height": 667})

    # HQ narrows the band behind the console's back: the server refuses, the page says why
    # with the band, and the preview read again now blocks.
    hq(server.base_url, "PUT", f"/api/bands/{LYCHEE}", {**BAND, "floor": 1700})
    go.click()
    expect(console.locator("#golive-error")).to_have_text(
        "没有开播：主题包里有价格超出 HQ 价格带 ¥17.00–¥25.00"
    )
    expect(console.locator("#live-badge")).to_have_attribute("data-live", "false")
    expect(preview.locator(".pack-conflict[data-blocking='true']")).to_have_count(1)
    expect(go).to_be_disabled()
    shot(console, "console-packs-3-refused-1280")
    hq(server.base_url, "PUT", f"/api/bands/{LYCHEE}", BAND)
    console.select_option("#golive-pack", "")
    expect(go).to_have_text("开播")
    choose(console, "fruit-fair")
    expect(console.locator("#golive-error")).to_have_text("")
    expect(go).to_be_enabled()

    # Live with the pack: the teleprompter shows the first line, the next one below.
    go.click()
    expect(console.locator("#live-badge")).to_have_attribute("data-live", "true")
    expect(console.locator("#live-title")).to_have_text("周末水果节")
    now, then = console.locator("#prompter-now"), console.locator("#prompter-then-text")
    expect(console.locator("#prompter")).to_be_visible()
    expect(now).to_have_text(SCRIPT[0])
    expect(then).to_have_text(SCRIPT[1])
    expect(console.locator("#prompter-pos")).to_have_text("1 / 3")
    expect(console.locator("#prompter-prev")).to_be_disabled()

    # The schedule: the deal at +0 s started (the sweep), the pomelo one counts down.
    rows = console.locator("#pack-schedule .sched-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-status", "started", timeout=5 * UNIT_MS)
    expect(rows.nth(0).locator(".sched-status")).to_have_text("进行中 · 剩 10 件")
    offer_id = rows.nth(0).get_attribute("data-offer")
    expect(console.locator(f"#offer-list .offer-row[data-offer='{offer_id}']")).to_be_visible()
    expect(rows.nth(1)).to_have_attribute("data-status", "queued")
    expect(rows.nth(1).locator(".sched-status")).to_have_text(re.compile(r"^1[45]:\d\d 后开始$"))

    # Next, then the keyboard (a clicker's PageDown); the position survives a reload.
    console.click("#prompter-next")
    expect(now).to_have_text(SCRIPT[1])
    expect(then).to_have_text(SCRIPT[2])
    console.keyboard.press("PageDown")
    expect(now).to_have_text(SCRIPT[2])
    expect(console.locator("#prompter-then")).to_have_attribute("data-last", "true")
    expect(console.locator("#prompter-next")).to_be_disabled()
    console.reload()
    wait_connected(console)
    expect(now).to_have_text(SCRIPT[2])
    console.keyboard.press("ArrowLeft")
    expect(now).to_have_text(SCRIPT[1])
    expect(console.locator("#prompter-pos")).to_have_text("2 / 3")
    shot(console, "console-packs-4-teleprompter-1280")

    console.click("#lang-toggle")
    expect(console.locator("#prompter-pack")).to_have_text("Weekend fruit fair · v1")
    expect(rows.nth(0).locator(".sched-status")).to_have_text(re.compile(r"^Live · \d+ left$"))
    shot(console, "console-packs-5-teleprompter-en-1280")
    console.click("#lang-toggle")
    assert log.all() == []


def test_band_beside_the_price_fields(tab: Opener) -> None:
    console, log = tab(f"/console/{ROOM}", "console")  # a phone: 375 wide
    wait_connected(console)
    if not console.locator("#live-info").is_visible():
        console.fill("#golive-title", "价格带")
        console.click("#golive-btn")
        expect(console.locator("#live-badge")).to_have_attribute("data-live", "true")

    price, note = console.locator("#offer-price"), console.locator("#offer-band")
    console.select_option("#offer-sku", LYCHEE)
    expect(note).to_have_text("HQ 价格带 ¥15.00–¥25.00")
    expect(note).to_have_attribute("data-state", "in")
    price.fill("9.90")
    expect(note).to_have_text("超出 HQ 价格带 ¥15.00–¥25.00")
    expect(price).to_have_attribute("aria-invalid", "true")
    price.fill("16.50")
    expect(note).to_have_attribute("data-state", "in")
    expect(price).not_to_have_attribute("aria-invalid", "true")
    console.select_option("#offer-sku", MANGO)  # no band for mangoes
    expect(note).to_be_hidden()
    expect(price).not_to_have_attribute("aria-invalid", "true")
    console.select_option("#offer-sku", LYCHEE)
    price.fill("26")
    expect(price).to_have_attribute("aria-invalid", "true")

    # The group form: the page marks the field but sends anyway; the server's refusal
    # (price_out_of_band with the band) is shown by the form.
    group_price, group_note = console.locator("#group-price"), console.locator("#group-band")
    console.select_option("#group-sku", LYCHEE)
    group_price.fill("30.00")
    expect(group_note).to_have_text("超出 HQ 价格带 ¥15.00–¥25.00")
    expect(group_price).to_have_attribute("aria-invalid", "true")
    console.click("#group-start")
    expect(console.locator("#group-form-error")).to_have_text(
        "这个价格超出 HQ 价格带 ¥15.00–¥25.00，没有生效"
    )
    shot(console, "console-packs-6-band-375")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for card, name in ((".offer-card", "offer"), (".groups-card", "group")):
        path = ARTIFACTS / f"console-packs-6-band-{name}-375.png"
        console.locator(card).screenshot(path=str(path))
    assert log.all() == []
