"""HQ's page (/hq) in headless Chromium against a real `liveshop serve --demo`: the league
follows sales made over the room sockets, sorts, filters and flags the weakest figure; the
editors PUT a catalog item, a band and a pack through their forms, show the server's
refusals, and the pack's preview shows the band's conflict. Screenshots go to
tests/artifacts/hq-*.png for a person to look at.
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.client import connect

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
ROOMS = ("s001", "s002")  # the demo's two stores (liveshop/app/demo.py)

with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveshopServer]:
    require_browser()
    with running_server(tmp_path_factory.mktemp("liveshop-hq-page")) as srv:
        yield srv


# ---- what HQ's systems and the stores' shoppers do, outside the page -------------------


def rest(server: LiveshopServer, method: str, path: str, body: object = None) -> Any:
    """HQ's REST API with an hq token, as another HQ system would call it."""
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


@contextlib.contextmanager
def room_socket(server: LiveshopServer, room: str, token: str) -> Iterator[Any]:
    """A room socket past its welcome (on the fast wire's port)."""
    with connect(f"ws://127.0.0.1:{server.ws_port}/ws/rooms/{room}", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "hello", "token": token}))
        welcome = json.loads(ws.recv(timeout=5))
        assert welcome["type"] == "welcome", welcome
        yield ws


def reply(ws: Any, kind: str) -> dict[str, Any]:
    """The next message of `kind` (room stream messages in between are skipped)."""
    while True:
        msg = json.loads(ws.recv(timeout=5))
        if msg["type"] in (kind, "error"):
            return dict(msg)


def buy(server: LiveshopServer, room: str, user: str, qty: int) -> int:
    """A shopper buys lychees over the room socket; returns what the order adds to GMV."""
    with room_socket(server, room, sign_token(user, "viewer", room=room)) as ws:
        ws.send(
            json.dumps({"type": "buy", "request_id": f"{user}-1", "sku": "lychee-500g", "qty": qty})
        )
        ack = reply(ws, "order_ack")
    assert ack.get("status") == "accepted", ack
    return int(ack["unit_price"]) * qty


def new_live_room(server: LiveshopServer, room: str, name: str, region: str, pack: str) -> None:
    """HQ opens a store (REST) and goes live in it with a campaign pack (its socket, as an
    hq token may)."""
    rest(server, "PUT", f"/api/rooms/{room}", {"name": name, "region": region})
    rest(
        server,
        "PUT",
        f"/api/rooms/{room}/products/lychee-500g",
        {"name": "岭南荔枝 500g", "price": 1990, "stock": 50},
    )
    with room_socket(server, room, sign_token("hq-test", "hq", room="*")) as ws:
        ws.send(json.dumps({"type": "go_live", "title": "新店开业", "pack_id": pack}))
        live = reply(ws, "live")
    assert live.get("live") is True, live


# ---- the page ------------------------------------------------------------------------


def open_hq(tab: Opener) -> tuple[Page, PageLog]:
    page, log = tab("/hq", "hq", width=1280)
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=5 * UNIT_MS)
    return page, log


def cell(page: Page, room: str, field: str) -> Any:
    return page.locator(f"#league-rows tr[data-room='{room}'] td[data-field='{field}']")


def figure(page: Page, room: str, field: str) -> int:
    return int(cell(page, room, field).get_attribute("data-value") or 0)


def expect_rooms(page: Page, rooms: list[str]) -> None:
    """The league's rows are these rooms, in this order (waiting for the page's layout)."""
    page.wait_for_function(
        """rooms => JSON.stringify([...document.querySelectorAll('#league-rows tr')]
                     .map(r => r.dataset.room)) === JSON.stringify(rooms)""",
        arg=rooms,
        timeout=3 * UNIT_MS,
    )


def shoot(page: Page, name: str, width: int = 1280, height: int = 800) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / f"{name}-{width}x{height}.png"
    page.screenshot(path=str(out))
    page.screenshot(path=str(out.with_name(f"{out.stem}-full.png")), full_page=True)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} scrolls sideways at {width}px"


def refused_loads_only(log: PageLog) -> list[str]:
    """Console errors except Chromium's own line for a 4xx the page shows as a refusal."""
    return [e for e in log.all() if "Failed to load resource" not in e]


# ---- tests ---------------------------------------------------------------------------


def test_the_league_lists_the_rooms_and_follows_sales_in_two_of_them(
    server: LiveshopServer, tab: Opener
) -> None:
    """The welcome's rows are the demo's rooms; a sale in each of two rooms (over the room
    sockets, viewer tokens) changes that row's orders and GMV cells and the totals within
    the league's second or two; a header click sorts, the filters narrow the rows, and a
    new live store with no sales has its weakest figure flagged against the chain median."""
    page, log = open_hq(tab)
    for room in ROOMS:
        expect(page.locator(f"#league-rows tr[data-room='{room}']")).to_be_visible()
    expect(cell(page, "s001", "room")).to_contain_text("望京店")
    expect(cell(page, "s002", "region")).to_have_text("beijing-chaoyang")
    before = {room: (figure(page, room, "orders"), figure(page, room, "gmv")) for room in ROOMS}
    totals_before = int(
        page.locator("#league-totals td[data-field='gmv']").get_attribute("data-value") or 0
    )

    added = {"s001": buy(server, "s001", "hq-page-a", 1)}
    added["s002"] = buy(server, "s002", "hq-page-b", 2) + buy(server, "s002", "hq-page-c", 1)
    sales = {"s001": 1, "s002": 2}
    for room in ROOMS:
        orders, gmv = before[room][0] + sales[room], before[room][1] + added[room]
        expect(cell(page, room, "orders")).to_have_attribute(
            "data-value", str(orders), timeout=5 * UNIT_MS
        )
        expect(cell(page, room, "orders")).to_have_text(str(orders))
        expect(cell(page, room, "gmv")).to_have_attribute(
            "data-value", str(gmv), timeout=5 * UNIT_MS
        )
        expect(cell(page, room, "gmv")).to_have_text(f"¥{gmv // 100:,}.{gmv % 100:02d}")
    total_gmv = totals_before + sum(added.values())
    expect(page.locator("#league-totals td[data-field='gmv']")).to_have_attribute(
        "data-value", str(total_gmv), timeout=2 * UNIT_MS
    )

    # Sorting: a numeric column sorts descending on the first click, ascending on the next.
    page.locator("#league-head th[data-key='orders'] button").click()
    expect(page.locator("#league-head th[data-key='orders']")).to_have_attribute(
        "aria-sort", "descending"
    )
    expect_rooms(page, ["s002", "s001"])  # two sales against one
    page.locator("#league-head th[data-key='orders'] button").click()
    expect(page.locator("#league-head th[data-key='orders']")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect_rooms(page, ["s001", "s002"])

    # Filters: by region, by the text of the name, live only.
    page.select_option("#filter-region", "beijing-chaoyang")
    expect_rooms(page, ["s002"])
    expect(page.locator("#league-totals td[data-field='orders']")).to_have_attribute(
        "data-value", str(figure(page, "s002", "orders"))
    )
    page.select_option("#filter-region", "")
    page.fill("#filter-text", "望京")
    expect_rooms(page, ["s001"])
    page.fill("#filter-text", "")
    page.check("#filter-live")
    expect_rooms(page, ["s001", "s002"])

    # A third store goes live and sells nothing: its weakest figure is flagged (a zero
    # against the median of three live stores), the best seller's is not.
    opening = {"title": "新店开业", "products": [{"sku": "lychee-500g", "stock": 10}]}
    rest(server, "PUT", "/api/packs/opening", opening)
    new_live_room(server, "s003", "鲜果社区店·新店", "beijing-chaoyang", pack="opening")
    row = page.locator("#league-rows tr[data-room='s003']")
    expect(row).to_have_attribute("data-live", "true", timeout=5 * UNIT_MS)
    expect(row.locator("td[data-field='pack']")).to_have_text("opening")
    expect(row).to_have_attribute("data-weak", re.compile(r"^(viewers|conversion|orders|gmv)$"))
    weak = row.locator("td.weak")
    expect(weak).to_have_count(1)
    expect(weak).to_have_attribute("title", re.compile("中位数"))
    assert page.locator("#league-rows tr[data-room='s002'] td.weak").count() == 0
    shoot(page, "hq-league")

    # The pack filter offers the packs the rows have, and "no pack".
    page.select_option("#filter-pack", "opening")
    expect_rooms(page, ["s003"])
    page.select_option("#filter-pack", "(none)")
    expect_rooms(page, ["s001", "s002"])
    page.select_option("#filter-pack", "")

    page.click("#lang-toggle")
    expect(page.locator("#league-head th[data-key='gmv']")).to_have_text("GMV")
    expect(page.locator("#league-totals td[data-field='room']")).to_contain_text("Total")
    expect(row.locator("td.weak")).to_have_attribute("title", re.compile("median"))
    shoot(page, "hq-league-en")
    shoot(page, "hq-league-en", 375, 667)
    page.click("#lang-toggle")
    assert log.all() == []


def test_the_editors_put_an_item_a_band_and_a_pack_and_the_preview_shows_the_conflict(
    server: LiveshopServer, tab: Opener
) -> None:
    """Through the page's forms: a catalog item (prices typed in yuan arrive in fen), a
    store's band for it (a refusal from the server is shown beside the form with its own
    message), and a pack selling it under that band. REST then has all three; the preview
    against the banded store lists a blocking out_of_band conflict and the one against the
    other store none; withdrawing the pack marks it withdrawn."""
    page, log = open_hq(tab)

    # The catalog.
    page.click(".tab[data-tab='catalog']")
    expect(page.locator("#tab-catalog")).to_be_visible()
    page.fill("#cat-sku", "peach-6pc")
    page.fill("#cat-name", "阳山水蜜桃 6个装")
    page.fill("#cat-name-en", "Yangshan peaches, 6")
    page.fill("#cat-category", "水果")
    page.fill("#cat-price", "abc")
    page.click("#cat-save")
    expect(page.locator("#cat-error")).to_contain_text("基准价")  # refused before sending
    page.fill("#cat-price", "29.90")
    page.fill("#cat-unit", "盒")
    page.click("#cat-save")
    expect(page.locator("#cat-done")).to_contain_text("peach-6pc")
    expect(page.locator("#cat-error")).to_be_empty()
    row = page.locator("#cat-rows tr[data-sku='peach-6pc']")
    expect(row).to_contain_text("¥29.90")
    item = rest(server, "GET", "/api/catalog/peach-6pc")["item"]
    assert (item["name"], item["name_en"], item["category"]) == (
        "阳山水蜜桃 6个装",
        "Yangshan peaches, 6",
        "水果",
    )
    assert (item["base_price"], item["unit"]) == (2990, "盒")
    shoot(page, "hq-catalog")

    # A band for store s001; first a store that does not exist, refused by the server.
    page.click(".tab[data-tab='bands']")
    page.fill("#band-sku", "peach-6pc")
    page.select_option("#band-scope-kind", "store")
    page.fill("#band-scope-id", "nope")
    page.fill("#band-floor", "25")
    page.fill("#band-ceiling", "35.00")
    page.click("#band-save")
    expect(page.locator("#band-error")).to_contain_text("没有找到")
    expect(page.locator("#band-error .error-detail")).to_have_text("no room 'nope'")
    page.fill("#band-scope-id", "s001")
    page.click("#band-save")
    expect(page.locator("#band-done")).to_contain_text("¥25.00–¥35.00")
    expect(page.locator("#band-error")).to_be_empty()
    expect(
        page.locator("#band-rows tr[data-sku='peach-6pc'][data-scope='store:s001']")
    ).to_be_visible()
    bands = rest(server, "GET", "/api/bands?sku=peach-6pc")["bands"]
    assert [(b["scope"], b["floor"], b["ceiling"]) for b in bands] == [("store:s001", 2500, 3500)]
    shoot(page, "hq-bands")

    # A pack selling the peaches at ¥19.90 with a deal at ¥22.00: under s001's band.
    page.click(".tab[data-tab='packs']")
    page.fill("#pack-id", "peach-week")
    page.fill("#pack-title", "水蜜桃周")
    product = page.locator("#pack-products tr").first
    product.locator(".p-sku").fill("peach-6pc")
    product.locator(".p-stock").fill("30")
    product.locator(".p-price").fill("19.90")
    page.click("#pack-add-product")
    page.locator("#pack-products tr").nth(1).locator(".p-sku").fill("lychee-500g")
    offer = page.locator("#pack-offers tr").first
    offer.locator(".o-sku").fill("peach-6pc")
    offer.locator(".o-price").fill("22")
    offer.locator(".o-qty").fill("10")
    offer.locator(".o-limit").fill("2")
    offer.locator(".o-duration").fill("60")
    offer.locator(".o-at").fill("30")
    page.fill("#pack-script", "欢迎来到水蜜桃周！\n\n  今天的桃子是早上到的  \n")
    page.fill("#pack-rooms", "s001, s002")
    page.click("#pack-save")
    expect(page.locator("#pack-done")).to_contain_text("peach-week")
    expect(page.locator("#pack-error")).to_be_empty()
    expect(page.locator("#pack-rows tr[data-pack='peach-week']")).to_have_attribute(
        "data-version", "1"
    )
    pack = rest(server, "GET", "/api/packs/peach-week")["pack"]
    assert pack["body"]["title"] == "水蜜桃周"
    assert pack["body"]["products"] == [
        {"sku": "peach-6pc", "stock": 30, "price": 1990},
        {"sku": "lychee-500g", "stock": None, "price": None},
    ]
    assert pack["body"]["offers"] == [
        {
            "sku": "peach-6pc",
            "price": 2200,
            "qty": 10,
            "per_user_limit": 2,
            "duration_s": 60,
            "at_s": 30,
        }
    ]
    assert pack["body"]["script"] == ["欢迎来到水蜜桃周！", "今天的桃子是早上到的"]
    assert pack["body"]["rooms"] == ["s001", "s002"]

    # The preview for s001: both prices are under its band, and going live is blocked.
    expect(page.locator("#pack-detail")).to_be_visible()
    page.select_option("#preview-room", "s001")
    page.click("#preview-btn")
    conflicts = page.locator("#preview-conflicts li[data-kind='out_of_band']")
    expect(conflicts).to_have_count(2)
    expect(conflicts.first).to_have_class(re.compile(r"\bblocking\b"))
    expect(conflicts.first).to_contain_text("¥25.00–¥35.00")
    expect(page.locator("#preview-h")).to_contain_text("不能")
    expect(
        page.locator("#preview-changes li[data-kind='add_product'][data-sku='peach-6pc']")
    ).to_contain_text("¥19.90")
    shoot(page, "hq-packs-preview")
    page.select_option("#preview-room", "s002")
    page.click("#preview-btn")
    expect(page.locator("#preview-h")).to_contain_text("s002")
    expect(page.locator("#preview-conflicts li.blocking")).to_have_count(0)
    expect(page.locator("#preview-changes li[data-kind='queue_offer']")).to_have_count(1)

    # Results (nobody went live with it), then the withdrawal after a confirmation.
    page.click("#results-btn")
    expect(page.locator("#results-empty")).to_be_visible()
    page.click("#pack-withdraw")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-ok")
    expect(page.locator("#detail-done")).to_contain_text("第 1 版")
    expect(page.locator("#pack-rows tr[data-pack='peach-week'] .tag")).to_have_text("已撤回")
    assert rest(server, "GET", "/api/packs/peach-week")["pack"]["withdrawn_at"] is not None
    page.click("#preview-btn")
    expect(page.locator("#preview-conflicts li[data-kind='withdrawn']")).to_have_count(1)

    page.click("#lang-toggle")
    expect(page.locator(".tab[data-tab='packs']")).to_have_text("Campaign packs")
    expect(page.locator("#preview-conflicts li[data-kind='withdrawn']")).to_contain_text(
        "withdrawn"
    )
    expect(page.locator("#detail-done")).to_be_empty()  # said in Chinese: gone
    shoot(page, "hq-packs-en")
    shoot(page, "hq-packs-en", 375, 667)
    page.click("#lang-toggle")
    assert refused_loads_only(log) == []


def test_the_league_comes_back_after_a_server_restart(server: LiveshopServer, tab: Opener) -> None:
    """The server restarts under an open HQ page: it says it is reconnecting, comes back
    by itself (same document) with a new welcome, and follows a sale made afterwards."""
    page, log = open_hq(tab)
    expect(page.locator("#league-rows tr[data-room='s001']")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    server.stop()
    expect(page.locator("#conn-banner")).to_be_visible(timeout=3 * UNIT_MS)
    server.start()
    # The backoff is capped at 5 s; allow for that plus the server's own start.
    expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=15 * UNIT_MS)
    expect(page.locator("#conn-banner")).to_be_hidden()
    orders = figure(page, "s001", "orders")
    buy(server, "s001", "hq-page-after", 1)
    expect(cell(page, "s001", "orders")).to_have_attribute(
        "data-value", str(orders + 1), timeout=5 * UNIT_MS
    )
    assert page.evaluate("window.__sameDocument") is True
    assert log.page_errors == []


# ---- the league's modules in the page's own browser -------------------------------------

WEAKEST_JS = """async () => {
  const { chainMedians, median, weakest } = await import('/static/js/league.js');
  const row = (room, live, viewers, conversion, orders, gmv) =>
    ({ room, live, viewers, conversion, orders, gmv });
  const rows = new Map([
    ['a', row('a', true, 100, 0.10, 10, 10000)],
    ['b', row('b', true, 80, 0.02, 12, 12000)],   // conversion 0.02 / 0.1 = 0.2
    ['c', row('c', true, 90, 0.10, 4, 11000)],    // orders 4 / 10 = 0.4, the lowest ratio
    ['d', row('d', true, 60, 0.12, 10, 6000)],    // gmv 6000 / 10500 = 0.57: not under half
    ['e', row('e', false, 0, 0, 0, 0)],           // not live: neither counted nor flagged
  ]);
  const m = chainMedians(rows);
  // Nobody has sold yet: the medians of conversion, orders and GMV are 0 and flag nothing.
  const zero = new Map([['x', row('x', true, 0, 0, 0, 0)], ['y', row('y', true, 3, 0, 0, 0)]]);
  return {
    medians: m,
    even: median([4, 1, 3, 2]),
    flags: [...rows.values()].map(r => weakest(r, m)?.field ?? null),
    zeroMedians: ['x', 'y'].map(k => weakest(zero.get(k), chainMedians(zero))),
  };
}"""


def test_the_weakest_figure_is_the_lowest_ratio_to_the_live_median_under_half(
    tab: Opener,
) -> None:
    """league.js, as the page loads it: medians over live rooms only (even counts take the
    mean of the middle two), one flag per row for the lowest value / median when under 0.5,
    none for a figure at 0.57 or a room not live, and a median of zero flags nothing."""
    page, log = open_hq(tab)
    got = page.evaluate(WEAKEST_JS)
    assert got["medians"] == {"viewers": 85, "conversion": 0.1, "orders": 10, "gmv": 10500}
    assert got["even"] == 2.5
    assert got["flags"] == [None, "conversion", "orders", None, None]
    # Viewers' median is 1.5: x at 0 is flagged on viewers; y, above it, on nothing.
    assert got["zeroMedians"] == [{"field": "viewers", "ratio": 0, "median": 1.5}, None]
    assert log.all() == []


CHEAP_UPDATES_JS = """async () => {
  const { LeagueTable } = await import('/static/js/leaguetable.js');
  const box = document.createElement('div');
  box.hidden = true;
  const table = document.createElement('table');
  const head = table.createTHead().insertRow();
  const body = table.createTBody();
  const empty = document.createElement('p');
  box.append(table, empty);
  document.body.append(box);
  let layouts = 0;
  const league = new LeagueTable({ body, totalsRow: head, empty, onLayout: () => layouts++ });
  const rows = Array.from({ length: 500 }, (_, i) => ({
    room: `r${String(i).padStart(3, '0')}`, name: `店 ${i}`, region: `g${i % 7}`, live: true,
    viewers: 100 + i, peak: 300, orders: i, units: 2 * i, gmv: 1000 * i, conversion: 0.1,
    holds: 0, groups_open: 0, hints: 0,
  }));
  league.reset(rows);
  const firstAfterReset = body.firstChild.dataset.room;  // sorted by GMV, highest first
  layouts = 0;
  const seen = new MutationObserver(() => {});
  seen.observe(body, { subtree: true, childList: true, characterData: true, attributes: true });
  // Ten rooms sell: only their orders cells change; r000 jumps to the top of the GMV sort.
  league.merge(rows.slice(0, 10).map(r => ({ room: r.room, orders: r.orders + 1 })));
  league.merge([{ room: 'r000', gmv: 10_000_000 }]);
  const touched = new Set(seen.takeRecords().map(m => {
    const td = (m.target.nodeType === Node.TEXT_NODE ? m.target.parentElement : m.target)
      .closest('td');
    return `${td.closest('tr').dataset.room}:${td.dataset.field}`;
  }));
  const before = { layouts, first: body.firstChild.dataset.room };
  await new Promise(resolve => setTimeout(resolve, 1300));
  const moved = seen.takeRecords().filter(m => m.type === 'childList' && m.target === body);
  return {
    firstAfterReset, touched: [...touched].sort(), before,
    after: { layouts, first: body.firstChild.dataset.room, moves: moved.length },
  };
}"""


def test_500_rows_merge_only_changed_cells_and_resort_once_within_a_second(
    tab: Opener,
) -> None:
    """The page's LeagueTable with 500 rows: two league messages right after the welcome
    rewrite only the cells whose values changed (ten orders cells, one GMV cell), move no
    row until the next layout, and that layout (one, within about a second) puts the
    room whose GMV jumped first, moving only that row."""
    page, log = open_hq(tab)
    got = page.evaluate(CHEAP_UPDATES_JS)
    assert got["firstAfterReset"] == "r499"
    expected = {f"r{i:03d}:orders" for i in range(10)} | {"r000:gmv"}
    assert set(got["touched"]) == expected
    assert got["before"] == {"layouts": 0, "first": "r499"}
    assert got["after"]["layouts"] == 1
    assert got["after"]["first"] == "r000"
    assert got["after"]["moves"] <= 2  # r000 taken out and put in front: nothing else
    assert log.all() == []


def test_the_hq_page_with_a_viewer_token_says_it_needs_hq(tab: Opener) -> None:
    """A viewer's token from a link is refused by /ws/hq: the page says it needs an HQ
    token, stops trying, and drops the token from the address bar."""
    viewer_token = sign_token("u-9", "viewer", room="s001")
    page, _ = tab(f"/hq#token={viewer_token}", "hq, viewer")
    expect(page.locator("#fatal")).to_contain_text("总部（hq）令牌")
    expect(page.locator("body")).to_have_attribute("data-conn", "closed")
    assert "token=" not in page.url
