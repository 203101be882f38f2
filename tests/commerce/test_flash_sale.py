"""Flash sales over real websockets: exactly the stock is sold, every order lands in
SQLite once, every viewer ends on the final stock."""

from __future__ import annotations

import asyncio
import json

import pytest

from liveshop.commerce.orders import Order
from liveshop.core import protocol as p
from tests.conftest import ROOM
from tests.support import Client, RunningServer, clients, eventually, token

pytestmark = pytest.mark.slow


async def _orders_in_db(server: RunningServer, n: int) -> list[Order]:
    """The room's stored orders once there are at least `n` of them."""
    assert server.runtime.orders is not None
    orders = await server.runtime.orders.list(room_id=ROOM, limit=10_000)
    return orders if len(orders) >= n else []


async def test_50_units_500_buyers_exactly_50_accepted(server: RunningServer) -> None:
    await flash_sale_50_of_500(server)


async def flash_sale_50_of_500(server: RunningServer) -> None:
    """500 buyers tap at once for 50 units: exactly 50 accepted, all stored once."""
    services = server.runtime.services
    assert services is not None
    await services.inventory.put_product(ROOM, "flash", name="秒杀荔枝", price=990, stock=50)
    n = 500
    async with clients([server.ws_url(ROOM)] * n, [token(user=f"b{i}") for i in range(n)]) as cs:
        acks = await asyncio.gather(
            *(
                c.request(
                    {"type": "buy", "request_id": "tap-1", "sku": "flash", "qty": 1},
                    "order_ack",
                    timeout=30,
                )
                for c in cs
            )
        )
        assert {a["type"] for a in acks} == {"order_ack"}
        accepted = [a for a in acks if a["status"] == "accepted"]
        assert len(accepted) == 50
        assert {a["reason"] for a in acks if a["status"] == "rejected"} == {"sold_out"}
        # every viewer's last word on the SKU is 0
        for c in cs:
            await c.wait_for(
                lambda m: m["type"] == "stock" and m["sku"] == "flash" and m["left"] == 0,
                timeout=10,
            )
            last = [m for m in c.of_type("stock") if m["sku"] == "flash"][-1]
            assert last["left"] == 0
            seqs = [m["seq"] for m in c.received if "seq" in m]
            assert seqs == sorted(set(seqs)), "room messages out of order or duplicated"
    assert (await services.inventory.ledger(ROOM))["flash"] == (0, 0, 50, 50)
    stored = await eventually(lambda: _orders_in_db(server, 50), timeout=10)
    assert sorted(o.order_id for o in stored) == sorted(a["order_id"] for a in accepted)


async def test_same_request_five_times_at_once_over_sockets(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url(ROOM))
    await c.hello(token(user="twice"))
    buy = {"type": "buy", "request_id": "again", "sku": "lychee-500g", "qty": 3}
    for _ in range(5):
        await c.send(buy)
    await eventually(lambda: len(c.of_type("order_ack")) == 5)
    acks = c.of_type("order_ack")
    assert all(a == acks[0] for a in acks) and acks[0]["status"] == "accepted"
    services = server.runtime.services
    assert services is not None
    assert (await services.inventory.ledger(ROOM))["lychee-500g"] == (197, 0, 3, 200)
    await c.close()


async def test_offer_20_units_limit_1_among_200_buyers(server: RunningServer) -> None:
    host = await Client.connect(server.ws_url(ROOM))
    await host.hello(token("broadcaster", "boss", room=ROOM))
    n = 200
    async with clients([server.ws_url(ROOM)] * n, [token(user=f"v{i}") for i in range(n)]) as cs:
        await host.send(
            {
                "type": "offer_start",
                "sku": "lychee-500g",
                "price": 990,
                "qty": 20,
                "duration_s": 60,
                "per_user_limit": 1,
            }
        )
        offer = await cs[0].wait_for(lambda m: m["type"] == "offer" and m["status"] == "live")
        offer_id = offer["offer_id"]

        async def shop(i: int, c: Client) -> list[dict[str, object]]:
            taps = [{"request_id": "t1", "qty": 2 if i % 7 == 0 else 1}]
            if i % 3 == 0:
                taps.append({"request_id": "t2", "qty": 1})  # tries twice
            acks = []
            for tap in taps:
                acks.append(
                    await c.request(
                        {"type": "buy", "sku": "lychee-500g", "offer_id": offer_id, **tap},
                        "order_ack",
                        30,
                    )
                )
            return acks

        results = await asyncio.gather(*(shop(i, c) for i, c in enumerate(cs)))
        accepted = [
            (i, a) for i, acks in enumerate(results) for a in acks if a["status"] == "accepted"
        ]
        assert sum(int(a["qty"]) for _, a in accepted) == 20  # type: ignore[call-overload]
        per_user: dict[int, int] = {}
        for i, a in accepted:
            per_user[i] = per_user.get(i, 0) + int(a["qty"])  # type: ignore[call-overload]
            assert a["unit_price"] == 990
        assert max(per_user.values()) == 1
        reasons = {a["reason"] for acks in results for a in acks if a["status"] == "rejected"}
        assert reasons <= {"sold_out", "limit_exceeded"}
        for c in cs:
            last = await c.wait_for(lambda m: m["type"] == "offer" and m["status"] == "sold_out")
            assert last["left"] == 0
            offers = [m for m in c.of_type("offer") if m["offer_id"] == offer_id]
            assert offers[-1]["left"] == 0 and offers[-1]["status"] == "sold_out"
    await host.close()


async def test_stats_after_a_session_equal_the_sqlite_orders(server: RunningServer) -> None:
    services = server.runtime.services
    assert services is not None
    host = await Client.connect(server.ws_url(ROOM))
    await host.hello(token("broadcaster", "boss", room=ROOM))
    buyers = [await Client.connect(server.ws_url(ROOM)) for _ in range(4)]
    for i, b in enumerate(buyers):
        await b.hello(token(user=f"s{i}"))
    plan = [(0, "lychee-500g", 2), (1, "lychee-500g", 1), (1, "mango-2pc", 3), (2, "mango-2pc", 1)]
    for k, (who, sku, qty) in enumerate(plan):
        ack = await buyers[who].request(
            {"type": "buy", "request_id": f"r{k}", "sku": sku, "qty": qty}, "order_ack"
        )
        assert ack["status"] == "accepted"
    session_id = (await services.rooms.snapshot(ROOM)).state.session_id
    stats = await host.wait_for(lambda m: m["type"] == "stats" and m["orders"] == 4, timeout=5)
    rows = [
        o for o in await eventually(lambda: _orders_in_db(server, 4)) if o.session_id == session_id
    ]
    assert stats["session_id"] == session_id
    assert stats["units"] == sum(o.qty for o in rows) == 7
    assert stats["gmv"] == sum(o.qty * o.unit_price for o in rows)
    by_sku: dict[str, int] = {}
    for o in rows:
        by_sku[o.sku] = by_sku.get(o.sku, 0) + o.qty
    assert {t["sku"]: t["units"] for t in stats["top"]} == by_sku
    assert stats["top"][0]["sku"] == "mango-2pc"  # 4 units beat 3
    distinct_buyers = len({o.user_id for o in rows})
    assert stats["conversion"] == pytest.approx(distinct_buyers / 4, abs=1e-3)
    assert isinstance(p.decode_server(json.dumps(stats)), p.Stats)
    # end_live stores the totals in SQLite
    await host.send({"type": "end_live"})
    await host.wait_for(lambda m: m["type"] == "live" and m["live"] is False)
    session = (await services.rooms.sessions(ROOM))[0]
    assert (session["orders"], session["units"], session["gmv"], session["buyers"]) == (
        4,
        7,
        stats["gmv"],
        distinct_buyers,
    )
