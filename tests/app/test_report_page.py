"""The review page (/report/{room}/{session}) in headless Chromium against a real
`liveshop serve --demo`: a session scripted over the room socket (three viewers buy, a
flash offer is bought down until the coach says stock is low, one more order, a group
of two that succeeds, end_live),
then the page must show exactly the JSON API's figures: the KPI cards and their
comparisons, the per-minute chart with a point and a bar per minute and the hint marked,
the funnel and the tables; print emulation hides the buttons; errors are said in words.
Screenshots (screen and print, 1280 and 375 wide) go to tests/artifacts/ for a person."""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
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
UNIT = UNIT_MS / 1000
TITLE = "复盘测试 · Review night"
LYCHEE, MANGO, EGGS = "lychee-500g", "mango-2pc", "eggs-10"
KPIS = ("viewers", "buyers", "conversion", "orders", "units", "gmv", "peak")

with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect
    from websockets.sync.client import ClientConnection, connect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveshopServer]:
    require_browser()
    with running_server(tmp_path_factory.mktemp("liveshop-report")) as srv:
        yield srv


# ---- the scripted session ------------------------------------------------------------


class Socket:
    """A room socket that keeps every message it read (sync, for a sync test)."""

    def __init__(self, stack: contextlib.ExitStack, server: LiveshopServer, token: str) -> None:
        url = f"ws://127.0.0.1:{server.port}/ws/rooms/{ROOM}"  # the HTTP port's socket
        self.ws: ClientConnection = stack.enter_context(connect(url, open_timeout=5 * UNIT))
        self.seen: list[dict[str, Any]] = []
        self.send({"type": "hello", "token": token})
        self.welcome = self.wait(lambda m: m["type"] in ("welcome", "bye"))
        assert self.welcome["type"] == "welcome", self.welcome

    def send(self, msg: dict[str, Any]) -> None:
        self.ws.send(json.dumps(msg))

    def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5) -> dict[str, Any]:
        """The first message from now on matching `pred` (or an error/bye: fail)."""
        deadline = time.monotonic() + timeout * UNIT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no such message; last ones: {self.seen[-5:]}")
            try:
                msg = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                continue
            self.seen.append(msg)
            if pred(msg):
                return msg
            if msg["type"] in ("error", "bye"):
                raise AssertionError(f"refused: {msg}")

    def request(self, msg: dict[str, Any], kind: str) -> dict[str, Any]:
        self.send(msg)
        return self.wait(lambda m: m["type"] == kind)

    def buy(self, rid: str, sku: str, qty: int, **extra: Any) -> dict[str, Any]:
        self.send({"type": "buy", "request_id": rid, "sku": sku, "qty": qty, **extra})
        ack = self.wait(lambda m: m["type"] == "order_ack" and m["request_id"] == rid)
        assert ack["status"] == "accepted", ack
        return ack


def get_json(server: LiveshopServer, path: str, token: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        server.base_url + path, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5 * UNIT) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@dataclass(frozen=True)
class Scripted:
    session_id: str
    offer_id: str
    report: dict[str, Any]  # what GET …/report answered once every order was stored


@pytest.fixture(scope="module")
def scripted(server: LiveshopServer) -> Scripted:
    """End the demo's running session, go live again, three viewers buy (two plain, one
    from a flash offer of 20 bought down to 1 left, which fires the coach's low_stock hint), one
    more plain order after the hint, a group of two that succeeds, then end_live; the
    report once the database has every order."""
    host_token = sign_token("host-review", "broadcaster")
    with contextlib.ExitStack() as stack:
        host = Socket(stack, server, host_token)
        if host.welcome["state"]["live"]:
            host.request({"type": "end_live"}, "live")
        live = host.request({"type": "go_live", "title": TITLE}, "live")
        assert live["live"] is True
        session_id = live["session_id"]
        viewers = [Socket(stack, server, sign_token(f"rv-{i}", "viewer")) for i in (1, 2, 3)]
        host.wait(lambda m: m["type"] == "viewers" and m["count"] >= 3)
        b1, b2, b3 = viewers
        b1.buy("rv-p1", LYCHEE, 2)
        b2.buy("rv-p2", MANGO, 1)
        offer = host.request(
            {
                "type": "offer_start",
                "sku": LYCHEE,
                "price": 990,
                "qty": 20,
                "duration_s": 120,
                "per_user_limit": 20,
            },
            "offer",
        )
        b3.buy("rv-p3", LYCHEE, 19, offer_id=offer["offer_id"])
        host.wait(lambda m: m["type"] == "hint" and m["code"] == "low_stock", timeout=6)
        b1.buy("rv-p4", EGGS, 1)
        group = host.request(
            {
                "type": "group_start",
                "sku": MANGO,
                "price": 1400,
                "threshold": 2,
                "duration_s": 600,
                "cap": 10,
                "per_user_limit": 2,
            },
            "group",
        )
        for c, rid in ((b1, "rv-g1"), (b2, "rv-g2")):
            c.send(
                {"type": "group_join", "request_id": rid, "group_id": group["group_id"], "qty": 1}
            )
            ack = c.wait(lambda m, rid=rid: m["type"] == "order_ack" and m["request_id"] == rid)
            assert ack["status"] == "accepted", ack
        host.wait(lambda m: m["type"] == "group" and m["status"] == "succeeded")
        ended = host.request({"type": "end_live"}, "live")
        assert ended["live"] is False

    path = f"/api/rooms/{ROOM}/sessions/{session_id}/report"
    deadline = time.monotonic() + 10 * UNIT
    while True:  # the persister brings the orders to the database a moment later
        status, body = get_json(server, path, host_token)
        assert status == 200, body
        report = body["report"]
        if report["comparison"]["this"]["orders"] == 6 and report["funnel"]["units"] == 25:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.1 * UNIT)
    return Scripted(session_id, offer["offer_id"], report)


# ---- what the page must show, formatted as format.js does -------------------------------


def money(minor: float) -> str:
    m = round(minor)
    return f"{'-' if m < 0 else ''}¥{abs(m) // 100:,}.{abs(m) % 100:02d}"


def count(n: float) -> str:
    return f"{round(n):,}"


def percent(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"


def shown(key: str, value: float) -> str:
    return money(value) if key == "gmv" else percent(value) if key == "conversion" else count(value)


def median_shown(key: str, value: float) -> str:
    if key in ("gmv", "conversion") or value == int(value):
        return shown(key, value)
    return f"{value:,.1f}".rstrip("0").rstrip(".")


def delta(key: str, now: float, base: float) -> str:
    """report.js's comparison: ▲/▼ with the change in % (conversion: in points)."""
    if key == "conversion":
        pts = (now - base) * 100
        return "持平" if abs(pts) < 0.05 else f"{'▲' if pts > 0 else '▼'} {abs(pts):.1f} 个百分点"
    if base == 0:
        return "持平" if now == 0 else "▲ 从 0 起"
    change = (now - base) / base * 100
    return "持平" if abs(change) < 0.05 else f"{'▲' if change > 0 else '▼'} {abs(change):.1f}%"


def open_report(tab: Opener, path: str, name: str, width: int = 1280) -> tuple[Page, PageLog]:
    page, log = tab(path, name, width=width)
    expect(page.locator("body")).not_to_have_attribute("data-state", "loading")
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    return page, log


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 5_000


def no_sideways_scroll(page: Page, name: str) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} scrolls sideways"


OVERLAPS = """sel => {
  const boxes = [...document.querySelectorAll(sel)]
    .map(n => [n.textContent, n.getBoundingClientRect()]);
  const apart = (p, q) => p.right - 0.5 <= q.left || q.right - 0.5 <= p.left
    || p.bottom - 0.5 <= q.top || q.bottom - 0.5 <= p.top;
  const out = [];
  boxes.forEach(([a, p], i) => boxes.slice(i + 1).forEach(([b, q]) => {
    if (!apart(p, q)) out.push(`${a} / ${b}`);
  }));
  return out;
}"""


def overlapping(page: Page, selector: str) -> list[str]:
    """Pairs of elements matching `selector` whose boxes overlap (labels that collide)."""
    pairs: list[str] = page.evaluate(OVERLAPS, selector)
    return pairs


def http_errors_only(log: PageLog) -> list[str]:
    """Console errors except Chromium's own line for a 4xx the page handles and shows."""
    return [e for e in log.all() if "Failed to load resource" not in e]


# ---- tests ---------------------------------------------------------------------------


def test_the_report_shows_the_api_figures(tab: Opener, scripted: Scripted) -> None:
    """Every KPI, comparison, chart point and bar, funnel step and table row on the page
    is the JSON API's figure for the scripted session, formatted for people."""
    r = scripted.report
    # The scripted session, as the API tells it (the page is checked against this).
    c = r["comparison"]
    assert c["this"]["orders"] == 6 and c["this"]["units"] == 25
    assert c["this"]["gmv"] == 2 * 1990 + 1590 + 19 * 990 + 1280 + 2 * 1400
    assert c["previous_sessions"] >= 1  # the demo's own session, ended by the script
    [offer] = r["offers"]
    assert (offer["offer_id"], offer["units"], offer["buyers"]) == (scripted.offer_id, 19, 1)
    assert any(h["code"] == "low_stock" for h in r["hints"])

    page, log = open_report(tab, f"/report/{ROOM}/{scripted.session_id}", "report")
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    expect(page.locator("#session-title")).to_have_text(TITLE)
    expect(page.locator("#session-id")).to_have_text(scripted.session_id)
    expect(page.locator("#page-sub")).to_contain_text("鲜果社区店·望京店")
    seconds = round((r["ended_at"] - r["started_at"]) / 1000)
    expect(page.locator("#session-duration")).to_have_text(
        f"{seconds // 60} 分 {seconds % 60} 秒" if seconds >= 60 else f"{seconds} 秒"
    )

    for key in KPIS:
        card = page.locator(f"#kpi-{key}")
        expect(card.locator(".kpi-value")).to_have_text(shown(key, c["this"][key]))
        for kind, none_text in (("previous", "没有更早的场次"), ("chain", "全链暂无可比场次")):
            line = card.locator(f"[data-cmp='{kind}']")
            if c[kind] is None:
                expect(line).to_have_text(none_text)
                expect(line).to_have_attribute("data-dir", "none")
            else:
                base = c[kind][key]
                expect(line.locator(".delta")).to_have_text(delta(key, c["this"][key], base))
                expect(line.locator(".cmp-base")).to_contain_text(median_shown(key, base))

    # The chart: one viewers point and one orders bar per minute, the hints marked.
    chart = page.locator("#minute-chart")
    n = len(r["minutes"])
    polyline = chart.locator("polyline.line.viewers")
    expect(polyline).to_have_attribute("data-points", str(n))
    assert len((polyline.get_attribute("points") or "").split()) == n
    expect(chart.locator("rect.bar")).to_have_count(n)
    bars = chart.locator("rect.bar").evaluate_all("bs => bs.map(b => Number(b.dataset.orders))")
    assert bars == [m["orders"] for m in r["minutes"]]
    marks = chart.locator(".hint-mark").evaluate_all(
        "ms => ms.flatMap(m => m.dataset.labels.split(',').map(Number))"
    )
    assert sorted(marks) == list(range(1, len(r["hints"]) + 1))
    tips = chart.locator(".hint-mark > title").all_text_contents()
    for h in r["hints"]:
        assert any(h["text"] in tip for tip in tips)
    expect(page.locator("#hint-legend li")).to_have_count(len(r["hints"]))
    assert overlapping(page, "#minute-chart .axis.time") == []

    for step in ("viewers", "buyers", "units", "picked_up"):
        expect(page.locator(f"#funnel-chart .funnel-step[data-step='{step}']")).to_have_attribute(
            "data-value", str(r["funnel"][step])
        )
    f = r["funnel"]
    expect(page.locator("#funnel-chart .funnel-rate[data-step='buyers']")).to_have_text(
        f"↓ 转化 {percent(f['buyers'] / f['viewers'])}"
    )

    rows = page.locator(".products-table tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.sku)") == [
        p["sku"] for p in r["products"]
    ]
    for i, p in enumerate(r["products"]):
        row = rows.nth(i)
        expect(row.locator("[data-col='product']")).to_contain_text(p["name"])
        expect(row.locator("[data-col='orders']")).to_have_text(count(p["orders"]))
        expect(row.locator("[data-col='units']")).to_have_text(count(p["units"]))
        expect(row.locator("[data-col='gmv']")).to_have_text(money(p["gmv"]))

    row = page.locator(f".offers-table tr[data-offer-id='{offer['offer_id']}']")
    expect(row.locator("[data-col='price']")).to_have_text(money(offer["price"]))
    expect(row.locator("[data-col='qty']")).to_have_text(count(offer["qty"]))
    expect(row.locator("[data-col='sold']")).to_have_text(count(offer["units"]))
    expect(row.locator("[data-col='buyers']")).to_have_text(count(offer["buyers"]))
    expect(row.locator(".through-pct")).to_have_text(percent(offer["sell_through"]))
    expect(row.locator(".status")).to_have_attribute("data-status", offer["status"])

    [group] = r["groups"]
    assert (group["status"], group["value"], group["members"]) == ("succeeded", 2, 2)
    row = page.locator(f".groups-table tr[data-group-id='{group['group_id']}']")
    expect(row.locator("[data-col='price']")).to_have_text(money(group["price"]))
    expect(row.locator("[data-col='threshold']")).to_have_text(f"{group['threshold']} 人")
    expect(row.locator("[data-col='value']")).to_have_text(
        f"{group['value']} / {group['threshold']}"
    )
    expect(row.locator(".status")).to_have_text("已成团")
    expect(row.locator("[data-col='members']")).to_have_text(count(group["members"]))
    expect(row.locator("[data-col='units']")).to_have_text(count(group["units"]))

    hint_rows = page.locator(".hints-table tbody tr")
    expect(hint_rows).to_have_count(len(r["hints"]))
    for i, h in enumerate(r["hints"]):
        row = hint_rows.nth(i)
        expect(row).to_have_attribute("data-code", h["code"])
        expect(row.locator("[data-col='hint']")).to_have_text(h["text"])
        expect(row.locator("[data-col='orders_5']")).to_have_text(
            f"{h['orders_before']} → {h['orders_after']}"
        )
        expect(row.locator("[data-col='viewers_5']")).to_have_text(
            f"{h['viewers_at']} → {h['viewers_after']}"
        )
    assert log.all() == []


def test_screen_and_print_at_desktop_and_phone_width(tab: Opener, scripted: Scripted) -> None:
    """Screen and print emulation at 1280 and 375 px: the print hides the buttons and keeps
    the charts their size; nothing scrolls sideways; screenshots for a person."""
    path = f"/report/{ROOM}/{scripted.session_id}"
    for width in (1280, 375):
        page, log = open_report(tab, path, f"report-{width}", width=width)
        expect(page.locator("#print-btn")).to_be_visible()
        expect(page.locator("#print-btn")).to_have_text("打印")
        no_sideways_scroll(page, f"report at {width}px")
        assert overlapping(page, "#kpi-list .kpi") == []
        shot(page, f"report-screen-{width}")

        page.emulate_media(media="print")
        expect(page.locator("#print-btn")).to_be_hidden()
        expect(page.locator("#lang-toggle")).to_be_hidden()
        for svg in ("#minute-chart", "#funnel-chart"):
            box = page.locator(svg).bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 150, (svg, box)
        # Drawn again for the printed width, one SVG px to one CSS px: text keeps its size.
        ratio = page.evaluate(
            """() => { const s = document.querySelector('#minute-chart');
                       return s.getBoundingClientRect().width / s.viewBox.baseVal.width; }"""
        )
        assert abs(ratio - 1) < 0.02, ratio
        shot(page, f"report-print-{width}")
        if width == 1280:
            # The real thing: A4 from the print stylesheet. The overview fills page one, the
            # funnel starts page two and this session's short tables fit under it.
            pdf = page.pdf(path=str(ARTIFACTS / "report-print.pdf"), prefer_css_page_size=True)
            assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 2
        page.emulate_media(media="screen")
        expect(page.locator("#print-btn")).to_be_visible()
        assert log.all() == []


def test_english_and_the_hint_texts_follow_the_language(tab: Opener, scripted: Scripted) -> None:
    r = scripted.report
    page, log = open_report(tab, f"/report/{ROOM}/{scripted.session_id}", "report-en", width=1280)
    page.click("#lang-toggle")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#kpi-viewers .kpi-label")).to_have_text("Viewers")
    expect(page.locator("#print-btn")).to_have_text("Print")
    expect(page.locator(".hints-table tbody tr").first.locator("[data-col='hint']")).to_have_text(
        r["hints"][0]["text_en"]
    )
    expect(page.locator(".groups-table .status")).to_have_text("succeeded")
    shot(page, "report-screen-1280-en")
    assert log.all() == []


def test_refusals_are_said_in_words(tab: Opener, scripted: Scripted) -> None:
    """404 for a session the room never had (and for a store that does not exist), 403 for
    a viewer's link, 401 for a token the server did not sign: each a plain sentence, with
    the server's code under it."""
    page, log = open_report(tab, f"/report/{ROOM}/ls_nope", "report-404")
    fatal = page.locator("#fatal")
    expect(fatal).to_have_attribute("data-status", "404")
    expect(fatal).to_contain_text("没有找到这场直播")
    expect(fatal).to_contain_text("not_found")
    expect(page.locator("#report")).to_be_hidden()
    expect(page.locator("#print-btn")).to_be_hidden()  # nothing to print
    shot(page, "report-error-404-1280")

    page, log_room = open_report(tab, "/report/nowhere/ls_x", "report-no-room")
    expect(page.locator("#fatal")).to_have_attribute("data-code", "no_room")
    expect(page.locator("#fatal")).to_contain_text("没有找到门店「nowhere」")

    viewer = sign_token("rv-nosy", "viewer")
    page, log_403 = open_report(
        tab, f"/report/{ROOM}/{scripted.session_id}#token={viewer}", "report-403", width=375
    )
    expect(page.locator("#fatal")).to_have_attribute("data-status", "403")
    expect(page.locator("#fatal")).to_contain_text("没有权限查看这场复盘")
    shot(page, "report-error-403-375")

    forged = jwt.encode(
        {"sub": "x", "role": "hq", "room": "*", "exp": int(time.time()) + 600},
        "another-secret-0123456789abcdef0123456",
        algorithm="HS256",
    )
    page, log_401 = open_report(
        tab, f"/report/{ROOM}/{scripted.session_id}#token={forged}", "report-401"
    )
    expect(page.locator("#fatal")).to_have_attribute("data-status", "401")
    expect(page.locator("#fatal")).to_contain_text("需要登录")
    expect(page.locator("#retry-btn")).to_be_hidden()
    logs = (log, log_room, log_403, log_401)
    assert [e for one in logs for e in http_errors_only(one)] == []


def test_a_three_hour_chart_stays_readable(tab: Opener, scripted: Scripted) -> None:
    """The chart module with 180 minutes and a dozen hints (some a minute apart): a point
    and a bar per minute, time labels and hint badges that never collide, at both widths."""
    for width in (1280, 375):
        path = f"/report/{ROOM}/{scripted.session_id}"
        page, log = open_report(tab, path, f"long-{width}", width=width)
        page.evaluate(
            """async () => {
              const { drawMinutes } = await import('/static/js/svgcharts.js');
              const minutes = Array.from({ length: 180 }, (_, m) => ({
                minute: m,
                viewers: Math.round(150 + 120 * Math.sin(m / 20) + m),
                orders: (m * 7) % 11,
                gmv: 0,
              }));
              const at = [3, 4, 5, 30, 31, 60, 90, 91, 120, 150, 178, 179.5];
              const hints = at.map((pos, i) => ({ pos, label: i + 1, tip: `hint ${i + 1}` }));
              const svg = document.querySelector('#minute-chart');
              const width = svg.parentElement.clientWidth;
              drawMinutes(svg, { minutes, hints, width, height: width < 500 ? 220 : 280,
                                 text: { aria: 'long', minuteTip: (m) => `minute ${m.minute}` } });
            }"""
        )
        chart = page.locator("#minute-chart")
        expect(chart.locator("rect.bar")).to_have_count(180)
        expect(chart.locator("polyline.line.viewers")).to_have_attribute("data-points", "180")
        assert overlapping(page, "#minute-chart .axis.time") == []
        assert overlapping(page, "#minute-chart .hint-badge") == []
        labels = chart.locator(".hint-mark").evaluate_all(
            "ms => ms.flatMap(m => m.dataset.labels.split(',').map(Number))"
        )
        assert sorted(labels) == list(range(1, 13))
        chart.screenshot(path=str(ARTIFACTS / f"report-chart-180min-{width}.png"))
        assert log.all() == []


def test_a_session_still_live_says_so(tab: Opener, server: LiveshopServer) -> None:
    """The demo's other store is still live: its review (opened by its staff, `?role=`)
    says it has not ended and shows what its orders give."""
    with urllib.request.urlopen(f"{server.base_url}/api/rooms/s002", timeout=5 * UNIT) as res:
        room = json.loads(res.read())
    assert room["live"] is True
    page, log = open_report(tab, f"/report/s002/{room['session_id']}?role=staff", "live-one")
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    expect(page.locator("#not-ended")).to_be_visible()
    expect(page.locator("#session-time")).to_contain_text("进行中")
    expect(page.locator("#session-duration")).to_have_text("—")
    expect(page.locator("#page-sub")).to_contain_text("鲜果社区店·酒仙桥店")
    expect(page.locator("#chart-legend")).to_have_text("在线人数（左轴）订单（右轴）")  # no hints
    expect(page.locator("#hints .empty")).to_have_text("这场没有触发提示")
    shot(page, "report-still-live-1280")
    assert log.all() == []
