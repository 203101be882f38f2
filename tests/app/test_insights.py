"""The dashboard, customers and suggestions REST through a real server: who may read what
(401/403/404 as JSON errors), refused query parameters (400), and a session from the
socket to the dashboard: buy over the room socket, end_live, the figures show it."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import httpx

from liveshop.core.keys import RoomKeys
from tests.conftest import ROOM
from tests.support import UNIT, Client, RunningServer, eventually, token


def bearer(role: str, user: str = "u", room: str = "*") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, user=user, room=room)}"}


HQ = bearer("hq", "hq-1")
HOST = bearer("broadcaster", "host", ROOM)
STAFF = bearer("staff", "clerk", ROOM)
OTHER_HOST = bearer("broadcaster", "host-2", "s002")
VIEWER = bearer("viewer", "v1", ROOM)
ROOM_PATHS = [
    f"/api/rooms/{ROOM}/dashboard",
    f"/api/rooms/{ROOM}/customers",
    f"/api/rooms/{ROOM}/suggestions",
]


def refused(r: httpx.Response, status: int, code: str) -> bool:
    body = r.json()
    return (
        r.status_code == status
        and r.headers["content-type"].startswith("application/json")
        and set(body) == {"error"}
        and body["error"]["code"] == code
        and bool(body["error"]["message"])
    )


async def test_a_rooms_figures_are_for_hq_and_that_rooms_broadcaster_and_staff(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=10 * UNIT) as http:
        for path in ROOM_PATHS:
            for headers in (HQ, HOST, STAFF, bearer("staff", "boss", "*")):
                r = await http.get(path, headers=headers)
                assert r.status_code == 200, (path, r.text)
            assert refused(await http.get(path), 401, "unauthorized")
            assert refused(await http.get(path, headers=VIEWER), 403, "forbidden"), path
            assert refused(await http.get(path, headers=OTHER_HOST), 403, "forbidden"), path
            nowhere = path.replace(ROOM, "no-such-room")
            assert refused(await http.get(nowhere, headers=HQ), 404, "not_found")
        assert (await http.get("/api/dashboard", headers=HQ)).status_code == 200
        for headers in (HOST, STAFF, VIEWER):
            assert refused(await http.get("/api/dashboard", headers=headers), 403, "forbidden")


async def test_bad_query_parameters_are_400s(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=10 * UNIT) as http:
        dashboard, customers, suggestions = ROOM_PATHS
        for path, query in (
            (dashboard, "since=yesterday"),
            (dashboard, "since=-1"),
            (dashboard, "since=200&until=100"),
            (dashboard, "since=100&until=100"),
            (dashboard, "limit=5"),  # not a dashboard parameter
            (customers, "limit=0"),
            (customers, "limit=101"),
            (customers, "offset=-3"),
            (customers, "limit=1.5"),
            (suggestions, "limit=51"),
            ("/api/dashboard", "until=soon"),
        ):
            r = await http.get(f"{path}?{query}", headers=HQ)
            assert refused(r, 400, "bad_message"), (path, query, r.text)
        ok = await http.get(f"{customers}?limit=100&offset=0&since=0&until=1", headers=HQ)
        assert ok.status_code == 200 and ok.json()["customers"] == []


async def _at_least(count: Awaitable[int], n: int) -> bool:
    return await count >= n


async def buy(client: Client, request_id: str, sku: str, qty: int) -> dict[str, Any]:
    msg = {"type": "buy", "request_id": request_id, "sku": sku, "qty": qty}
    ack = await client.request(msg, "order_ack")
    assert ack["status"] == "accepted", ack
    return ack


async def test_a_session_sold_over_the_socket_shows_on_the_dashboard(
    server: RunningServer,
) -> None:
    host = await Client.connect(server.ws_url(ROOM))
    alice = await Client.connect(server.ws_url(ROOM))
    bob = await Client.connect(server.ws_url(ROOM))
    try:
        assert (await host.hello(token("broadcaster", "host", ROOM)))["type"] == "welcome"
        assert (await alice.hello(token(user="alice", room=ROOM)))["type"] == "welcome"
        assert (await bob.hello(token(user="bob", room=ROOM)))["type"] == "welcome"
        await buy(alice, "a1", "lychee-500g", 2)
        await buy(bob, "b1", "mango-2pc", 1)
        await buy(alice, "a2", "mango-2pc", 1)
        # the presence loop adds the session's distinct viewers every few hundred ms
        redis = server.runtime.redis
        assert redis is not None
        audience = RoomKeys.of(ROOM).audience
        assert await eventually(lambda: _at_least(redis.scard(audience), 2), timeout=10)
        await host.send({"type": "end_live"})
        assert (await alice.next_of("live"))["live"] is False
    finally:
        for c in (host, alice, bob):
            await c.close()
    async with httpx.AsyncClient(base_url=server.http, timeout=10 * UNIT) as http:

        async def stored() -> dict[str, Any] | None:
            r = await http.get(f"/api/rooms/{ROOM}/dashboard", headers=HOST)
            body: dict[str, Any] = r.json()
            return body if body["figures"]["orders"] == 3 else None

        board = await eventually(stored, timeout=10)
        session = (await http.get(f"/api/rooms/{ROOM}/sessions", headers=HOST)).json()["sessions"][
            0
        ]
        f = board["figures"]
        assert (f["sessions"], f["orders"], f["units"], f["gmv"]) == (1, 3, 4, 2 * 1990 + 2 * 1590)
        assert (f["buyers"], f["buyer_sessions"], f["new_buyers"], f["repeat_buyers"]) == (
            2,
            2,
            2,
            0,
        )
        assert f["viewers"] == session["viewers"] >= 2
        assert f["conversion"] == round(2 / session["viewers"], 4)
        assert board["name"] == "鲜果社区店"
        assert board["window"] == {"since": None, "until": None, "start": session["started_at"]}
        [row] = board["sessions"]
        assert (row["session_id"], row["title"], row["buyers"], row["gmv"]) == (
            session["session_id"],
            "今晚荔枝专场",
            2,
            7160,
        )
        assert [(b["sku"], b["units"], b["gmv"]) for b in board["best_sellers"]] == [
            ("lychee-500g", 2, 3980),
            ("mango-2pc", 2, 3180),
        ]
        page = (await http.get(f"/api/rooms/{ROOM}/customers?limit=1", headers=STAFF)).json()
        assert (page["total"], page["limit"], page["offset"]) == (2, 1, 0)
        assert [(c["user_id"], c["gmv"], c["units"]) for c in page["customers"]] == [
            ("alice", 5570, 3)
        ]
        assert page["customers"][0]["tags"] == []  # one session, no catalog, no deal
        chain = (await http.get("/api/dashboard", headers=HQ)).json()
        assert chain["figures"]["gmv"] == 7160
        assert [(s["room_id"], s["name"], s["gmv"]) for s in chain["stores"]] == [
            (ROOM, "鲜果社区店", 7160)
        ]
        found = (await http.get(f"/api/rooms/{ROOM}/suggestions", headers=HOST)).json()
        assert found["room"] == ROOM and found["audience"] == session["viewers"]
        lychee, mango = found["suggestions"]
        assert (lychee["sku"], lychee["name"], lychee["listed"]) == (
            "lychee-500g",
            "岭南荔枝 500g",
            True,
        )
        assert lychee["reason"] == "本店近 1 场售出 2 件（1 场有销量）"
        assert (lychee["forecast"]["basis"], lychee["forecast"]["expected"]) == ("own", 2)
        assert mango["sku"] == "mango-2pc"
