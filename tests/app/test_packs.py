"""Campaign packs through a real server, engine and SQLite file: a preview lists every
change and conflict; going live with a pack applies it in one step (a catalog SKU added,
prices and stock set, offers started at their `at_s` by the sweep, the script on the
console's REST read); the same version twice — one after the other or ten at once —
applies once; an offer outside its band refuses the whole go-live and changes nothing;
a withdrawal cancels the queued offers (a live one runs out) and bars the version."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from liveshop.commerce.packs import PackIn, PackOffer, PackProduct
from tests.conftest import ROOM, server_off_air
from tests.support import UNIT, Client, RunningServer, eventually, token

HQ = {"Authorization": f"Bearer {token('hq', user='hq-1')}"}
HOST = {"Authorization": f"Bearer {token('broadcaster', user='host', room=ROOM)}"}
VIEWER = {"Authorization": f"Bearer {token('viewer', user='v1', room=ROOM)}"}
LYCHEE, NAVEL = "lychee-500g", "navel-5jin"
SCRIPT = ["开场：欢迎街坊们，今晚水果节！", "荔枝：现摘空运，今晚 15.9", "收尾：明天店里自提"]
PACK: dict[str, Any] = {
    "title": "周末水果节",
    "title_en": "Weekend fruit fair",
    "products": [{"sku": NAVEL, "stock": 30}, {"sku": LYCHEE, "price": 1890, "stock": 50}],
    "offers": [
        {"sku": LYCHEE, "price": 1590, "qty": 20, "per_user_limit": 2, "duration_s": 60},
        {"sku": NAVEL, "price": 3490, "qty": 40, "per_user_limit": 1, "duration_s": 60, "at_s": 1},
        {"sku": LYCHEE, "price": 1600, "qty": 5, "per_user_limit": 1, "duration_s": 60, "at_s": 30},
    ],
    "script": SCRIPT,
}


@pytest.fixture
async def srv(redis: Redis, redis_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with server_off_air(redis_url, tmp_path) as server:
        yield server


async def _products(http: httpx.AsyncClient, room: str = ROOM) -> dict[str, tuple[int, int]]:
    body = (await http.get(f"/api/rooms/{room}")).json()
    return {x["sku"]: (x["price"], x["stock"]) for x in body["products"]}


async def _host(srv: RunningServer, room: str = ROOM) -> Client:
    host = await Client.connect(srv.ws_url(room))
    welcome = await host.hello(token("broadcaster", user="host", room=room))
    assert welcome["type"] == "welcome"
    return host


async def test_preview_then_go_live_applies_the_pack_once(srv: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
        item = {"name": "赣南脐橙 5斤", "category": "fruit", "base_price": 3990}
        assert (await http.put(f"/api/catalog/{NAVEL}", json=item, headers=HQ)).status_code == 200
        put = await http.put("/api/packs/fruit-fair", json=PACK, headers=HQ)
        assert put.status_code == 200, put.text
        assert put.json()["pack"]["version"] == 1
        # only HQ writes packs; bad input is a JSON 400 and makes no version
        assert (await http.put("/api/packs/fruit-fair", json=PACK, headers=HOST)).status_code == 403
        bad = await http.put("/api/packs/fruit-fair", json={**PACK, "offers": [{}]}, headers=HQ)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_message"
        got = (await http.get("/api/packs/fruit-fair", headers=HOST)).json()
        assert len(got["versions"]) == 1

        preview = await http.post(f"/api/packs/fruit-fair/preview?room={ROOM}", headers=HOST)
        assert preview.status_code == 200, preview.text
        found = preview.json()["preview"]
        assert found["applied"] is False
        assert found["changes"] == [
            {"kind": "add_product", "sku": NAVEL, "after": 3990},
            {"kind": "stock", "sku": NAVEL, "before": 0, "after": 30},
            {"kind": "price", "sku": LYCHEE, "before": 1990, "after": 1890},
            {"kind": "stock", "sku": LYCHEE, "before": 200, "after": 250},
            {"kind": "queue_offer", "sku": LYCHEE, "after": 1590, "at_s": 0},
            {"kind": "queue_offer", "sku": NAVEL, "after": 3490, "at_s": 1},
            {"kind": "queue_offer", "sku": LYCHEE, "after": 1600, "at_s": 30},
        ]
        assert [(c["kind"], c["sku"], c["blocking"]) for c in found["conflicts"]] == [
            ("short_stock", NAVEL, False),
            ("overlapping_offers", LYCHEE, False),
        ]
        assert await _products(http) == {LYCHEE: (1990, 200), "mango-2pc": (1590, 120)}

        host = await _host(srv)
        try:
            live = await host.request({"type": "go_live", "pack_id": "fruit-fair"}, "live")
            assert live["type"] == "live" and live["live"] is True, live
            assert live["title"] == "周末水果节"  # the room has no title of its own tonight
            # the first offer starts at once (the sweep), the navel one is skipped: 40 > 30
            offer = await host.wait_for(lambda m: m["type"] == "offer", timeout=5)
            assert (offer["sku"], offer["price"], offer["qty"]) == (LYCHEE, 1590, 20)

            async def settled() -> list[dict[str, Any]] | None:
                pack = (await http.get(f"/api/rooms/{ROOM}/pack", headers=HOST)).json()["pack"]
                offers: list[dict[str, Any]] = pack["offers"]
                return offers if offers[1]["status"] != "queued" else None

            offers = await eventually(settled, timeout=5)
            assert [(o["sku"], o["status"], o.get("reason")) for o in offers] == [
                (LYCHEE, "started", None),
                (NAVEL, "skipped", "short_stock"),
                (LYCHEE, "queued", None),
            ]
            assert offers[0]["offer_id"] == offer["offer_id"]
            pack = (await http.get(f"/api/rooms/{ROOM}/pack", headers=HOST)).json()["pack"]
            assert (pack["pack_id"], pack["version"], pack["script"]) == ("fruit-fair", 1, SCRIPT)
            assert (await http.get(f"/api/rooms/{ROOM}/pack", headers=VIEWER)).status_code == 403
            assert await _products(http) == {
                LYCHEE: (1890, 250),
                "mango-2pc": (1590, 120),
                NAVEL: (3990, 30),
            }
            # the same version again, in a new session: no stock, no offers
            await host.request({"type": "end_live"}, "live")
            again = await host.request({"type": "go_live", "pack_id": "fruit-fair"}, "live")
            assert again["live"] is True and again["session_id"] != live["session_id"]
            await asyncio.sleep(1.2)  # two sweeps: nothing queued for this session
            pack = (await http.get(f"/api/rooms/{ROOM}/pack", headers=HOST)).json()["pack"]
            assert pack["offers"] == []
            assert await _products(http) == {
                LYCHEE: (1890, 250),
                "mango-2pc": (1590, 120),
                NAVEL: (3990, 30),
            }
            preview = await http.post(f"/api/packs/fruit-fair/preview?room={ROOM}", headers=HQ)
            assert preview.json()["preview"]["applied"] is True
            assert preview.json()["preview"]["changes"] == []
        finally:
            await host.close()
        results = (await http.get("/api/packs/fruit-fair/results", headers=HQ)).json()
        assert [(r["room"], r["version"], r["session_id"]) for r in results["stores"]] == [
            (ROOM, 1, live["session_id"])
        ]
        assert {s["sku"] for s in results["stores"][0]["pack_skus"]} == {LYCHEE, NAVEL}


async def test_ten_go_lives_at_once_apply_the_version_once(srv: RunningServer) -> None:
    services = srv.runtime.services
    assert services is not None
    packs = services.packs
    pack = await packs.put(
        "one-tap",
        PackIn(
            title="一键开播",
            products=[PackProduct(LYCHEE, stock=7)],
            offers=[PackOffer(LYCHEE, 1500, qty=3, per_user_limit=1, duration_s=60, at_s=300)],
        ),
    )
    outcomes = await asyncio.gather(
        *(packs.go_live(ROOM, pack.pack_id, None) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(o, tuple) for o in outcomes), outcomes
    assert sum(1 for opened, _ in outcomes if opened) == 1  # type: ignore[misc]
    left, _held, _sold, stocked = (await services.inventory.ledger(ROOM))[LYCHEE]
    assert (left, stocked) == (207, 207)
    mine = await packs.of_room(ROOM)
    assert mine is not None and [o.status for o in mine.offers] == ["queued"]
    # an end and a go-live again with the same version: still once
    await services.rooms.end_live(ROOM)
    assert (await packs.go_live(ROOM, pack.pack_id, None))[0]
    left, _held, _sold, stocked = (await services.inventory.ledger(ROOM))[LYCHEE]
    assert (left, stocked) == (207, 207)


async def test_an_offer_outside_its_band_refuses_the_go_live_and_changes_nothing(
    srv: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
        band = {"scope": f"store:{ROOM}", "floor": 1800, "ceiling": 2200}
        assert (await http.put(f"/api/bands/{LYCHEE}", json=band, headers=HQ)).status_code == 200
        pack = {
            "title": "低价冲量",
            "products": [{"sku": LYCHEE, "price": 1900, "stock": 10}],
            "offers": [
                {"sku": LYCHEE, "price": 990, "qty": 5, "per_user_limit": 1, "duration_s": 60}
            ],
        }
        assert (await http.put("/api/packs/cheap", json=pack, headers=HQ)).status_code == 200
        preview = (await http.post(f"/api/packs/cheap/preview?room={ROOM}", headers=HQ)).json()
        [conflict] = preview["preview"]["conflicts"]
        assert (conflict["code"], conflict["floor"], conflict["ceiling"]) == (
            "price_out_of_band",
            1800,
            2200,
        )
        assert conflict["blocking"] is True and conflict["price"] == 990
        # s002 has no store band: the same pack is fine there
        other = (await http.post("/api/packs/cheap/preview?room=s002", headers=HQ)).json()
        assert other["preview"]["conflicts"] == []
        host = await _host(srv)
        try:
            err = await host.request({"type": "go_live", "pack_id": "cheap"}, "live")
            assert (err["type"], err["code"], err["floor"], err["ceiling"]) == (
                "error",
                "price_out_of_band",
                1800,
                2200,
            )
            missing = await host.request({"type": "go_live", "pack_id": "no-such"}, "live")
            assert (missing["type"], missing["code"]) == ("error", "not_found")
        finally:
            await host.close()
        room = (await http.get(f"/api/rooms/{ROOM}")).json()
        assert room["live"] is False
        assert await _products(http) == {LYCHEE: (1990, 200), "mango-2pc": (1590, 120)}


async def test_withdraw_cancels_queued_offers_and_bars_the_version(srv: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
        pack = {
            "title": "限时",
            "offers": [
                {"sku": LYCHEE, "price": 1500, "qty": 5, "per_user_limit": 1, "duration_s": 60},
                {
                    "sku": "mango-2pc",
                    "price": 1200,
                    "qty": 5,
                    "per_user_limit": 1,
                    "duration_s": 60,
                    "at_s": 600,
                },
            ],
            "rooms": [ROOM, "s002"],
        }
        assert (await http.put("/api/packs/flash", json=pack, headers=HQ)).status_code == 200
        host = await _host(srv)
        try:
            await host.request({"type": "go_live", "pack_id": "flash"}, "live")
            started = await host.wait_for(lambda m: m["type"] == "offer", timeout=5)
            assert started["sku"] == LYCHEE
            assert (await http.post("/api/packs/flash/withdraw", headers=HOST)).status_code == 403
            out = await http.post("/api/packs/flash/withdraw", headers=HQ)
            assert out.json() == {"pack_id": "flash", "version": 1, "queued_cancelled": 1}
            offers = (await http.get(f"/api/rooms/{ROOM}/pack", headers=HOST)).json()["pack"]
            assert [o["status"] for o in offers["offers"]] == ["started", "withdrawn"]
            # the live offer runs out: still live after the withdrawal
            room = (await http.get(f"/api/rooms/{ROOM}")).json()
            assert [(o["offer_id"], o["status"]) for o in room["offers"]] == [
                (started["offer_id"], "live")
            ]
        finally:
            await host.close()
        other = await _host(srv, "s002")
        try:
            err = await other.request({"type": "go_live", "pack_id": "flash"}, "live")
            assert (err["type"], err["code"]) == ("error", "not_found")
            # a new version is a new pack for every room
            assert (await http.put("/api/packs/flash", json=pack, headers=HQ)).status_code == 200
            ok = await other.request({"type": "go_live", "pack_id": "flash"}, "live")
            assert ok["type"] == "live", ok
        finally:
            await other.close()
        # not for this room: refused, whatever else is right
        assert (
            await http.put("/api/packs/north", json={**pack, "rooms": ["s002"]}, headers=HQ)
        ).status_code == 200
        host = await _host(srv)
        try:
            await host.request({"type": "end_live"}, "live")
            err = await host.request({"type": "go_live", "pack_id": "north"}, "live")
            assert (err["type"], err["code"]) == ("error", "forbidden")
        finally:
            await host.close()


async def test_a_packs_groups_open_when_their_time_comes(srv: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
        group = {"threshold": 2, "duration_s": 600, "per_user_limit": 1}
        pack = {
            "title": "社区拼团日",
            "groups": [
                {"sku": LYCHEE, "price": 1500, "cap": 30, **group},
                {"sku": "mango-2pc", "price": 1200, "cap": 500, **group, "at_s": 1},
            ],
        }
        assert (await http.put("/api/packs/together", json=pack, headers=HQ)).status_code == 200
        units = {**pack, "groups": [{**pack["groups"][0], "metric": "units", "threshold": 40}]}
        bad = await http.put("/api/packs/together", json=units, headers=HQ)
        assert bad.status_code == 400 and "threshold" in bad.json()["error"]["message"]
        found = (await http.post(f"/api/packs/together/preview?room={ROOM}", headers=HQ)).json()
        assert [(c["kind"], c["sku"]) for c in found["preview"]["changes"]] == [
            ("queue_group", LYCHEE),
            ("queue_group", "mango-2pc"),
        ]
        assert [(c["kind"], c["sku"]) for c in found["preview"]["conflicts"]] == [
            ("short_stock", "mango-2pc")  # 500 > 120 on the shelf
        ]
        host = await _host(srv)
        try:
            await host.request({"type": "go_live", "pack_id": "together"}, "live")
            opened = await host.wait_for(lambda m: m["type"] == "group", timeout=5)
            assert (opened["sku"], opened["price"], opened["cap"], opened["status"]) == (
                LYCHEE,
                1500,
                30,
                "open",
            )

            async def settled() -> list[dict[str, Any]] | None:
                pack = (await http.get(f"/api/rooms/{ROOM}/pack", headers=HOST)).json()["pack"]
                offers: list[dict[str, Any]] = pack["offers"]
                return offers if all(o["status"] != "queued" for o in offers) else None

            entries = await eventually(settled, timeout=5)
            assert [(e["kind"], e["status"], e.get("reason")) for e in entries] == [
                ("group", "started", None),
                ("group", "skipped", "short"),
            ]
            assert entries[0]["group_id"] == opened["group_id"]
            # the group's shelf left the room's stock
            assert (await _products(http))[LYCHEE] == (1990, 170)
        finally:
            await host.close()


async def test_go_live_with_a_pack_while_live_changes_nothing(srv: RunningServer) -> None:
    services = srv.runtime.services
    assert services is not None
    opened, session_id = await services.rooms.go_live(ROOM, None)
    assert opened
    async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
        band_in = {"scope": f"store:{ROOM}", "floor": 1000, "ceiling": 3000}
        assert (await http.put(f"/api/bands/{LYCHEE}", json=band_in, headers=HQ)).status_code == 200
    late = await services.packs.put(
        "late", PackIn(title="迟到", products=[PackProduct(LYCHEE, price=1, stock=9)])
    )
    # live already: not refused for its price (1 < the band's 1000), no stock, same session
    assert await services.packs.go_live(ROOM, late.pack_id, None) == (False, session_id)
    left, _held, _sold, stocked = (await services.inventory.ledger(ROOM))[LYCHEE]
    assert (left, stocked) == (200, 200)
