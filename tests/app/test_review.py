"""The post-live review (复盘) of a scripted session through a real server, engine,
sockets and SQLite file: three viewers, two plain purchases, a flash offer bought down
until a coaching hint fires, a group that succeeds, one pickup at the counter; then
`end_live`. The report's figures are exactly what was scripted, and it compares the
session with the store's two earlier sessions and the chain's other store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from liveshop.commerce.draws import winners
from tests.conftest import ROOM, server_off_air
from tests.support import UNIT, Client, RunningServer, eventually, token

HOST = {"Authorization": f"Bearer {token('broadcaster', user='host', room=ROOM)}"}
STAFF = {"Authorization": f"Bearer {token('staff', user='clerk', room=ROOM)}"}
VIEWER = {"Authorization": f"Bearer {token('viewer', user='b1', room=ROOM)}"}
LYCHEE, MANGO = "lychee-500g", "mango-2pc"


@pytest.fixture
async def srv(redis: Redis, redis_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with server_off_air(redis_url, tmp_path) as server:
        yield server


async def _earlier_sessions(srv: RunningServer) -> None:
    """The store's two earlier sessions (one order, then two) and one of another store:
    purchases straight into the engine, so nobody is counted as a viewer."""
    services = srv.runtime.services
    assert services is not None
    earlier = [
        (ROOM, [("x", LYCHEE)]),
        (ROOM, [("x", LYCHEE), ("y", LYCHEE)]),
        ("s002", [("z", MANGO)]),
    ]
    for n, (room, buys) in enumerate(earlier):
        await services.rooms.go_live(room, None)
        for i, (user, sku) in enumerate(buys):
            outcome = await services.inventory.buy(room, user, f"e{n}-{i}", sku, 1)
            assert outcome.accepted
        totals = await services.rooms.end_live(room)
        assert totals is not None
        await services.reviews.store(room, totals)


async def test_a_scripted_session_gives_exactly_its_figures(srv: RunningServer) -> None:
    await _earlier_sessions(srv)
    host = await Client.connect(srv.ws_url(ROOM))
    viewers = [await Client.connect(srv.ws_url(ROOM)) for _ in range(3)]
    try:
        await host.hello(token("broadcaster", user="host", room=ROOM))
        live = await host.request({"type": "go_live"}, "live")
        assert live["live"] is True
        session_id = live["session_id"]
        b1, b2, b3 = viewers
        for i, v in enumerate(viewers, start=1):
            await v.hello(token(user=f"b{i}"))
        await host.wait_for(lambda m: m["type"] == "viewers" and m["count"] == 3, timeout=5)

        async def buy(c: Client, rid: str, sku: str, qty: int, **extra: Any) -> dict[str, Any]:
            ack = await c.request(
                {"type": "buy", "request_id": rid, "sku": sku, "qty": qty, **extra}, "order_ack"
            )
            assert ack.get("status") == "accepted", ack
            return ack

        await buy(b1, "p1", LYCHEE, 2)
        mango = await buy(b2, "p2", MANGO, 1)
        offer = await host.request(
            {
                "type": "offer_start",
                "sku": LYCHEE,
                "price": 1500,
                "qty": 20,
                "duration_s": 600,
                "per_user_limit": 20,
            },
            "offer",
        )
        assert offer["type"] == "offer", offer
        await buy(b3, "p3", LYCHEE, 19, offer_id=offer["offer_id"])
        hint = await host.wait_for(lambda m: m["type"] == "hint" and m["code"] == "low_stock", 5)
        assert hint["sku"] == LYCHEE
        group = await host.request(
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
        for c, rid in ((b1, "g1"), (b2, "g2")):
            ack = await c.request(
                {"type": "group_join", "request_id": rid, "group_id": group["group_id"], "qty": 1},
                "order_ack",
            )
            assert ack.get("status") == "accepted", ack
        await host.wait_for(
            lambda m: m["type"] == "group" and m["status"] == "succeeded", timeout=5
        )
        async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
            ready = await http.post(
                f"/api/orders/{mango['order_id']}/state", json={"state": "ready"}, headers=STAFF
            )
            assert ready.status_code == 200, ready.text
            picked = await http.post(
                f"/api/rooms/{ROOM}/pickups/verify",
                json={"code": mango["pickup_code"]},
                headers=STAFF,
            )
            assert picked.status_code == 200, picked.text
            ended = await host.request({"type": "end_live"}, "live")
            assert ended["live"] is False

            url = f"/api/rooms/{ROOM}/sessions/{session_id}/report"

            async def report() -> dict[str, Any] | None:
                body: dict[str, Any] = (await http.get(url, headers=HOST)).json()["report"]
                # the persister brings every order and its last state to the database
                return (
                    body
                    if body["funnel"]["picked_up"] == 1 and body["funnel"]["units"] == 24
                    else None
                )

            r = await eventually(report, timeout=10)
            assert (await http.get(url, headers=VIEWER)).status_code == 403
            missing = await http.get(f"/api/rooms/{ROOM}/sessions/nope/report", headers=HOST)
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    finally:
        for c in (host, *viewers):
            await c.close()

    gmv = 2 * 1990 + 1590 + 19 * 1500 + 2 * 1400
    assert r["minutes"] == [{"minute": 0, "viewers": 3, "orders": 5, "units": 24, "gmv": gmv}]
    assert r["funnel"] == {"viewers": 3, "buyers": 3, "units": 24, "picked_up": 1}
    assert [(x["sku"], x["orders"], x["units"], x["gmv"]) for x in r["products"]] == [
        (LYCHEE, 2, 21, 2 * 1990 + 19 * 1500),
        (MANGO, 3, 3, 1590 + 2 * 1400),
    ]
    assert r["products"][0]["name"] == "岭南荔枝 500g"
    [o] = r["offers"]
    assert (o["offer_id"], o["qty"], o["units"], o["buyers"], o["sell_through"], o["status"]) == (
        offer["offer_id"],
        20,
        19,
        1,
        0.95,
        "ended",
    )
    [g] = r["groups"]
    assert (g["group_id"], g["status"], g["value"], g["members"], g["units"]) == (
        group["group_id"],
        "succeeded",
        2,
        2,
        2,
    )
    low = [h for h in r["hints"] if h["code"] == "low_stock"]
    assert len(low) == 1 and low[0]["sku"] == LYCHEE and low[0]["minute"] == 0
    # three orders came before the hint, the group's two joins after it
    assert (low[0]["orders_before"], low[0]["orders_after"]) == (3, 2)
    assert (low[0]["viewers_at"], low[0]["viewers_after"]) == (3, 3)
    assert low[0]["text"] == hint["text"]
    c = r["comparison"]
    assert c["this"] == {
        "viewers": 3,
        "buyers": 3,
        "conversion": 1.0,
        "orders": 5,
        "units": 24,
        "gmv": gmv,
        "peak": 3,
    }
    assert c["previous_sessions"] == 2
    assert (c["previous"]["orders"], c["previous"]["gmv"], c["previous"]["viewers"]) == (
        1.5,
        1.5 * 1990,
        0,
    )
    assert c["chain_sessions"] == 1
    assert (c["chain"]["orders"], c["chain"]["gmv"]) == (1, 1590)


async def test_polls_and_draws_are_in_the_review_even_when_they_close_after_the_end(
    srv: RunningServer,
) -> None:
    """A poll and a draw run during the session and are still open at `end_live`: each
    lands in the session's review as it closed, the draw with its seed and winners (which
    the documented function recomputes); a poll from off air is in no review."""
    host = await Client.connect(srv.ws_url(ROOM))
    v1 = await Client.connect(srv.ws_url(ROOM))
    v2 = await Client.connect(srv.ws_url(ROOM))
    try:
        await host.hello(token("broadcaster", user="host", room=ROOM))
        off_air = await host.request(
            {"type": "poll_start", "question": "开播前?", "options": ["a", "b"], "duration_s": 10},
            "poll",
        )
        session_id = (await host.request({"type": "go_live"}, "live"))["session_id"]
        await v1.hello(token(user="b1"))
        await v2.hello(token(user="b2"))
        poll = await host.request(
            {
                "type": "poll_start",
                "question": "下一个上什么?",
                "options": ["芒果", "荔枝", "榴莲"],
                "duration_s": 10,
            },
            "poll",
        )
        draw = await host.request(
            {"type": "draw_start", "prize": "荔枝一箱", "winners": 1, "duration_s": 10},
            "draw",
        )
        for c, option in ((v1, 1), (v2, 1)):
            await c.send({"type": "vote", "poll_id": poll["poll_id"], "option": option})
            await c.send({"type": "draw_enter", "draw_id": draw["draw_id"]})
        await host.wait_for(lambda m: m["type"] == "draw" and m["entrants"] == 2, timeout=5)
        assert (await host.request({"type": "end_live"}, "live"))["live"] is False
        drawn = await v1.wait_for(
            lambda m: m["type"] == "draw" and m["status"] == "drawn", timeout=20
        )
        url = f"/api/rooms/{ROOM}/sessions/{session_id}/report"
        async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:

            async def report() -> dict[str, Any] | None:
                body: dict[str, Any] = (await http.get(url, headers=HOST)).json()["report"]
                return body if body["polls"] and body["draws"] else None

            r = await eventually(report, timeout=10)
    finally:
        for c in (host, v1, v2):
            await c.close()
    [p] = r["polls"]
    assert (p["poll_id"], p["options"], p["counts"], p["votes"], p["winner"]) == (
        poll["poll_id"],
        ["芒果", "荔枝", "榴莲"],
        [0, 2, 0],
        2,
        1,
    )
    assert p["closed_at"] >= p["ends_at"]
    assert off_air["poll_id"] not in {x["poll_id"] for x in r["polls"]}
    [d] = r["draws"]
    assert (d["draw_id"], d["entrants"], d["commitment"], d["seed"], d["winners"]) == (
        draw["draw_id"],
        2,
        draw["commitment"],
        drawn["seed"],
        drawn["winners"],
    )
    assert d["winners"] == winners(bytes.fromhex(d["seed"]), ["b1", "b2"], 1)
