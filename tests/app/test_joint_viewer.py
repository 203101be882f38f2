"""The viewer page in a joint room (跨店联播) in headless Chromium against a real
`liveshop serve --demo`. HQ opens three member stores (places, delivery radii, stock) and a
joint room over REST and goes live in it over a room socket. One viewer picks a pickup
store by name and buys: the page says 到 中关村店 自提 with the code, and names the store
when the chosen one has too few. Another delivers to a granted location: routed past the
nearest store (none in stock) to the nearest one with stock, shown with its distance; a
buy whose first frame is lost is resent with the same request and fulfilment; a quantity
no store has is `no_store` in plain words. A denied location keeps pickup. The orders land
at the stores the page named (REST). A store room's page shows no picker and sends no
fulfilment. Screenshots go to tests/artifacts/joint-viewer-*.png."""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.client import connect

from liveshop.commerce.routing import distance_m
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

with contextlib.suppress(ImportError):
    from playwright.sync_api import Browser, Page, WebSocketRoute, expect

JOINT = "jv-beijing"
SKU = "lychee-500g"
PRICE = 1790  # the joint room's price; the stores' own is 1990
STORES = {  # room: (name, lat, lng, delivery radius m, stock)
    "jv-guomao": ("国贸店", 39.9087, 116.4605, 8_000, 0),
    "jv-wangjing": ("望京店", 39.9964, 116.4703, 8_000, 50),
    "jv-zgc": ("中关村店", 39.9835, 116.3162, 3_000, 50),
}
SANLITUN = {"latitude": 39.9339, "longitude": 116.4547}  # nearest: 国贸 (none), then 望京


def rest(server: LiveshopServer, method: str, path: str, body: object = None) -> Any:
    """The REST API with an hq token, as HQ's own systems would call it."""
    req = urllib.request.Request(
        server.base_url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {sign_token('hq-test', 'hq', room='*')}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def go_live(server: LiveshopServer, room: str) -> None:
    """HQ goes live in the joint room over its room socket (the fast wire's port)."""
    with connect(f"ws://127.0.0.1:{server.ws_port}/ws/rooms/{room}", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "hello", "token": sign_token("hq-test", "hq", room="*")}))
        ws.send(json.dumps({"type": "go_live", "title": "北京联播 · 荔枝季"}))
        while True:
            msg = json.loads(ws.recv(timeout=5))
            assert msg["type"] != "error", msg
            if msg["type"] == "live":
                assert msg["live"] is True, msg
                return


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveshopServer]:
    require_browser()
    with running_server(tmp_path_factory.mktemp("liveshop-joint-viewer")) as srv:
        for room, (name, lat, lng, radius, stock) in STORES.items():
            place = {"name": name, "lat": lat, "lng": lng, "delivery_radius_m": radius}
            rest(srv, "PUT", f"/api/rooms/{room}", place)
            product = {"name": "岭南荔枝 500g", "price": 1990, "stock": stock}
            rest(srv, "PUT", f"/api/rooms/{room}/products/{SKU}", product)
        joint = {"name": "北京联播", "kind": "network", "stores": list(STORES)}
        rest(srv, "PUT", f"/api/rooms/{JOINT}", joint)
        product = {"name": "岭南荔枝 500g", "price": PRICE, "stock": 0}
        rest(srv, "PUT", f"/api/rooms/{JOINT}/products/{SKU}", product)
        go_live(srv, JOINT)
        yield srv


Buys = list[dict[str, Any]]
Phone = Callable[..., tuple["Page", PageLog, Buys]]


@pytest.fixture
def phone(browser: Browser, server: LiveshopServer) -> Iterator[Phone]:
    """Open a page in its own context (its own demo user) and wait for its welcome; `where`
    grants a location. Returns the page, its errors and every `buy` it sent."""
    pages: list[Page] = []

    def opener(
        path: str,
        name: str,
        *,
        width: int = 375,
        where: dict[str, float] | None = None,
        before_goto: Callable[[Page], None] | None = None,
    ) -> tuple[Page, PageLog, Buys]:
        options: dict[str, Any] = {}
        if where is not None:
            options = {"geolocation": where, "permissions": ["geolocation"]}
        context = browser.new_context(
            viewport={"width": width, "height": 667 if width < 600 else 800},
            device_scale_factor=1,
            locale="zh-CN",
            is_mobile=width < 600,
            has_touch=width < 600,
            **options,
        )
        page = context.new_page()
        page.set_default_timeout(5 * UNIT_MS)
        log = PageLog(name)
        page.on(
            "console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda e: log.page_errors.append(str(e)))
        buys = sent_buys(page)
        if before_goto is not None:
            before_goto(page)
        page.goto(server.base_url + path)
        pages.append(page)
        expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=5 * UNIT_MS)
        return page, log, buys

    yield opener
    for page in pages:
        page.context.close()


def sent_buys(page: Page) -> list[dict[str, Any]]:
    """Every `buy` the page puts on its room socket (before routing, if any), from here on."""
    buys: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            msg = json.loads(payload)
            if msg.get("type") == "buy":
                buys.append(msg)

        ws.on("framesent", on_frame)

    page.on("websocket", on_socket)
    return buys


# True once the page has not scrolled for two frames (a smooth scroll of its own is over).
SETTLED = """() => new Promise(done => {
  const y = window.scrollY;
  requestAnimationFrame(() => requestAnimationFrame(() => done(window.scrollY === y)));
})"""


def shoot(page: Page, name: str, width: int = 375, at: str | None = None) -> None:
    """A screenshot at `width` (scrolled to `at`, else the top) and of the full page, for a
    person to look at; the page never scrolls sideways."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = 667 if width < 600 else 800
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    if at is None:
        page.evaluate("window.scrollTo(0, 0)")
    else:
        page.locator(at).evaluate("n => n.scrollIntoView({block: 'center'})")
    page.wait_for_function(SETTLED)
    out = ARTIFACTS / f"joint-viewer-{name}-{width}x{height}.png"
    page.screenshot(path=str(out))
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky top bar lands mid-page
    page.screenshot(path=str(out.with_name(f"{out.stem}-full.png")), full_page=True)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} scrolls sideways at {width}px"


def km(metres: int) -> str:
    """The page's distance words (joint.js distanceText) for 1 km and more."""
    return f"{metres / 1000:.1f} 公里"


def store_orders(server: LiveshopServer, room: str, n: int) -> list[dict[str, Any]]:
    """The store's orders as its board reads them (SQLite, written by the persister)."""
    deadline = time.monotonic() + 10 * UNIT_MS / 1000
    while True:
        orders = rest(server, "GET", f"/api/orders?room_id={room}")["orders"]
        if len(orders) >= n or time.monotonic() > deadline:
            return list(orders)
        time.sleep(0.1)


def store_stock(server: LiveshopServer, room: str) -> int:
    state = rest(server, "GET", f"/api/rooms/{room}")
    return int(next(p["stock"] for p in state["products"] if p["sku"] == SKU))


def members_stock(server: LiveshopServer) -> int:
    """What the joint room should show: the sum of its member stores' stock."""
    return sum(store_stock(server, room) for room in STORES)


# ---- tests -----------------------------------------------------------------------------


def test_a_pickup_store_chosen_by_name_takes_the_order_and_is_remembered(
    server: LiveshopServer, phone: Phone
) -> None:
    """Before the first buy the page asks how to get it; a buy tapped then sends nothing and
    points at the card. The viewer picks 到店自提 at 中关村店 (listed by name) and buys: the
    buy names that store, the confirmation and the order card say 到 中关村店 自提 with the
    pickup code, the order is at jv-zgc; the store's 备好 reaches the card. A reload keeps
    the store and the order. 国贸店 (none in stock) refuses: `no_store`, naming it."""
    viewer, log, buys = phone(f"/rooms/{JOINT}", "viewer A")
    card = viewer.locator("#fulfil")
    expect(card).to_be_visible()
    expect(card).to_have_attribute("data-ready", "false")
    expect(viewer.locator("#fulfil-choose")).to_have_text("下单前先选：到店自提，或送货上门")
    expect(viewer.locator("#fulfil-stores")).to_have_text("3 家门店联播")
    row = viewer.locator(f"#product-list li[data-sku='{SKU}']")
    expect(row).to_have_attribute("data-stock", str(members_stock(server)))  # their sum
    shoot(viewer, "choose")

    row.locator(".buy").click()
    expect(row.locator(".row-msg")).to_have_text("请先选择：到店自提，或送货上门")
    expect(viewer.locator("#fulfil-msg")).to_have_text("请先选择：到店自提，或送货上门")
    viewer.get_by_role("radio", name="到店自提").check()
    store = viewer.locator("#fulfil-store")
    expect(store).to_be_visible()
    # the stores by name, in the joint room's order, once GET /api/rooms/{store} answered
    expect(store.locator("option")).to_have_text(["请选择门店", "国贸店", "望京店", "中关村店"])
    row.locator(".buy").click()
    expect(row.locator(".row-msg")).to_have_text("请先选择自提门店")
    assert buys == []  # nothing went out without a fulfilment

    store.select_option(label="中关村店")
    expect(card).to_have_attribute("data-ready", "true")
    row.locator(".buy").click()
    confirm = viewer.locator("#order-confirm .confirm")
    expect(confirm.locator(".order-route")).to_have_text("到 中关村店 自提")
    expect(confirm.locator(".pickup-code")).to_have_text(re.compile(r"^\w{3,}$"))
    assert [b["fulfilment"] for b in buys] == [{"method": "pickup", "store": "jv-zgc"}]
    assert buys[0]["qty"] == 1
    viewer.click("#my-orders-tab")
    order_card = viewer.locator("#my-orders li.order-card").first
    expect(order_card.locator(".order-route")).to_have_text("到 中关村店 自提")
    expect(order_card.locator("[data-action=cancel]")).to_have_count(1)  # cancelled from here too
    shoot(viewer, "pickup", at="#my-orders")

    (order,) = store_orders(server, "jv-zgc", 1)
    assert (order["via"], order["route_rule"], order["unit_price"], order["qty"]) == (
        JOINT,
        "chosen",
        PRICE,
        1,
    )
    assert order["order_id"] == order_card.get_attribute("data-order-id")
    # 中关村店 packs it: the move, published in the store, reaches the joint room's page.
    staff = sign_token("staff-zgc", "staff", room="jv-zgc")
    req = urllib.request.Request(
        f"{server.base_url}/api/orders/{order['order_id']}/state",
        data=json.dumps({"state": "ready"}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {staff}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    expect(order_card).to_have_attribute("data-state", "ready")
    expect(order_card.locator(".order-route")).to_have_text("到 中关村店 自提")

    viewer.reload()
    expect(viewer.locator("body")).to_have_attribute("data-conn", "open")
    expect(viewer.locator("input[name=fulfil-method][value=pickup]")).to_be_checked()
    expect(store).to_have_value("jv-zgc")
    expect(card).to_have_attribute("data-ready", "true")
    viewer.click("#my-orders-tab")
    expect(viewer.locator("#my-orders li.order-card .order-route")).to_have_text(
        ["到 中关村店 自提"]
    )

    # 国贸店 has none: the chosen store cannot take it, and the page says which and why.
    store.select_option(label="国贸店")
    row.locator(".buy").click()
    refused = "国贸店 的货不够 1 件，接不了这一单。可以换一家门店自提。"
    expect(row.locator(".row-msg")).to_have_text(refused)
    expect(viewer.locator("#fulfil-msg")).to_have_text(refused)
    assert buys[-1]["fulfilment"] == {"method": "pickup", "store": "jv-guomao"}
    assert store_orders(server, "jv-guomao", 0) == []
    assert log.all() == []


def test_delivery_goes_to_the_nearest_store_with_stock_and_a_lost_buy_is_resent_the_same(
    server: LiveshopServer, phone: Phone
) -> None:
    """A viewer at 三里屯 with location allowed chooses 送货上门, 使用我的位置, an address,
    and buys. The first buy frame is lost on the way: the page resends it, same request id,
    same fulfilment; one order, at 望京店 (国贸 is nearer but has none), shown as 由 望京店
    发货 · 距您 N 公里 · 最近有货 with the server's distance. 60 units (more than any
    store has) is `no_store`, said plainly with pickup suggested, and the card says it too."""
    sent: list[dict[str, Any]] = []

    def lose_the_first_buy(ws: WebSocketRoute) -> None:
        server_side = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            msg = json.loads(message)
            if msg["type"] == "buy":
                sent.append(msg)
                if len(sent) == 1:
                    return  # lost on a bad mobile network
            server_side.send(message)

        ws.on_message(from_page)

    def route(page: Page) -> None:
        page.route_web_socket(re.compile(r"/ws/rooms/"), lose_the_first_buy)

    viewer, log, _ = phone(f"/rooms/{JOINT}", "viewer B", where=SANLITUN, before_goto=route)
    viewer.get_by_role("radio", name="送货上门").check()
    expect(viewer.locator("#fulfil-where")).to_have_text("点「使用我的位置」，好找离你最近的门店")
    row = viewer.locator(f"#product-list li[data-sku='{SKU}']")
    row.locator(".buy").click()
    expect(row.locator(".row-msg")).to_have_text("请先点「使用我的位置」")
    viewer.click("#fulfil-locate")
    expect(viewer.locator("#fulfil-where")).to_have_attribute("data-located", "true")
    expect(viewer.locator("#fulfil-where")).to_contain_text("已取得你的位置")
    row.locator(".buy").click()
    expect(row.locator(".row-msg")).to_have_text("请填写送货地址")
    expect(viewer.locator("#fulfil-address")).to_be_focused()
    viewer.fill("#fulfil-address", "三里屯路 19 号院 3 号楼 1201")
    assert sent == []

    row.locator(".buy").click()
    expect(row.locator(".buy")).to_have_text("提交中…")
    route_line = viewer.locator("#order-confirm .confirm .order-route")
    expect(route_line).to_be_visible(timeout=12 * UNIT_MS)  # resent after 6 s unanswered
    assert len(sent) == 2, sent
    assert sent[0] == sent[1]  # the same request_id, sku, qty and fulfilment
    assert sent[0]["fulfilment"] == {
        "method": "delivery",
        "address": "三里屯路 19 号院 3 号楼 1201",
        "lat": SANLITUN["latitude"],
        "lng": SANLITUN["longitude"],
    }
    (order,) = store_orders(server, "jv-wangjing", 1)
    assert (order["via"], order["route_rule"], order["method"]) == (
        JOINT,
        "nearest_in_stock",
        "delivery",
    )
    away = int(order["route_distance_m"])
    lat, lng = STORES["jv-wangjing"][1:3]
    assert abs(away - distance_m(SANLITUN["latitude"], SANLITUN["longitude"], lat, lng)) <= 1
    expect(route_line).to_have_text(f"由 望京店 发货 · 距您 {km(away)} · 最近有货")
    expect(viewer.locator("#order-confirm .pickup-code")).to_have_count(0)  # delivered
    viewer.click("#my-orders-tab")
    order_card = viewer.locator(f"#my-orders li.order-card[data-order-id='{order['order_id']}']")
    expect(order_card.locator(".order-route")).to_have_text(
        f"由 望京店 发货 · 距您 {km(away)} · 最近有货"
    )
    expect(order_card.locator(".order-address")).to_contain_text("三里屯路 19 号院")
    shoot(viewer, "delivery", at="#fulfil")
    shoot(viewer, "delivery", width=1280)
    assert store_orders(server, "jv-guomao", 0) == []
    assert store_stock(server, "jv-wangjing") == 49
    expect(row).to_have_attribute("data-stock", str(members_stock(server)))

    # More than any store has: nobody can take it, and the page says so plainly.
    viewer.click("#my-orders-close")
    stock_before = {room: store_stock(server, room) for room in STORES}
    viewer.fill("#fulfil-qty", "60")
    viewer.locator("#fulfil-qty").dispatch_event("change")
    row.locator(".buy").click()
    no_store = "没有门店能接这一单：你的地址太远，或附近门店的货不够 60 件。可以改为到店自提。"
    expect(row.locator(".row-msg")).to_have_text(no_store)
    expect(viewer.locator("#fulfil-msg")).to_have_text(no_store)
    expect(viewer.locator("#toast")).to_have_text("没有门店能接这一单")
    assert sent[-1]["qty"] == 60 and sent[-1]["fulfilment"]["method"] == "delivery"
    shoot(viewer, "nostore", at="#fulfil")
    assert {room: store_stock(server, room) for room in STORES} == stock_before
    assert len(store_orders(server, "jv-wangjing", 0)) == 1

    viewer.click("#lang-toggle")
    expect(viewer.locator("#fulfil-h")).to_have_text("How to get it")
    expect(viewer.locator("#fulfil-msg")).to_contain_text("No store can take this order")
    expect(route_line).to_have_text(
        f"Shipped by 望京店 · {away / 1000:.1f} km from you · nearest with stock"
    )
    expect(viewer.locator("body")).to_have_attribute("data-conn", "open")
    shoot(viewer, "delivery-en")
    assert log.all() == []


def test_a_denied_location_says_so_and_keeps_pickup(
    phone: Phone,
) -> None:
    """Without the location permission, 使用我的位置 says plainly that delivery cannot work
    and the card goes back to 到店自提."""
    viewer, log, _ = phone(f"/rooms/{JOINT}", "viewer C")
    viewer.get_by_role("radio", name="送货上门").check()
    viewer.click("#fulfil-locate")
    expect(viewer.locator("#fulfil-msg")).to_have_text(
        "你没有允许使用位置，没法送货上门。已改回到店自提。"
    )
    expect(viewer.locator("input[name=fulfil-method][value=pickup]")).to_be_checked()
    expect(viewer.locator("#fulfil-store")).to_be_visible()
    expect(viewer.locator("#fulfil-delivery")).to_be_hidden()
    shoot(viewer, "denied", at="#fulfil")
    assert log.all() == []


def test_a_store_room_shows_no_picker_and_sends_no_fulfilment(
    phone: Phone,
) -> None:
    """The demo's store room looks as before: no fulfilment card; a buy is one unit, with no
    fulfilment, and gets its pickup code."""
    viewer, log, buys = phone(f"/rooms/{ROOM}", "store viewer")
    expect(viewer.locator("#product-list li").first).to_be_visible()
    expect(viewer.locator("#fulfil")).to_be_hidden()
    viewer.locator("#product-list li .buy").first.click()
    expect(viewer.locator("#order-confirm .pickup-code")).to_have_text(re.compile(r"^\w{3,}$"))
    expect(viewer.locator(".order-route")).to_have_count(0)
    assert len(buys) == 1 and "fulfilment" not in buys[0] and buys[0]["qty"] == 1
    viewer.click("#my-orders-tab")
    expect(viewer.locator("#my-orders [data-action=cancel]").first).to_be_visible()
    assert log.all() == []
