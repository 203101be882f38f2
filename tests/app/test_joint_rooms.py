"""Joint rooms (跨店联播) through a real server, engine, sockets and SQLite file: a buy
goes to the chosen pickup store or to the nearest member store that delivers there with
every unit; the ack names the store and the route; a retry of the request gets the same
order; no member can take it → `no_store`. 1,000 buyers at once over 20 stores oversell
none. A server SIGKILLed mid-request: the retry on another process goes to the same
store, once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.rooms import Rooms
from liveshop.commerce.routing import distance_m
from liveshop.core.keys import RoomKeys
from liveshop.engine.database import open_database
from tests.conftest import server_off_air
from tests.support import (
    UNIT,
    Client,
    RunningServer,
    ServerProcess,
    eventually,
    token,
)

HQ = {"Authorization": f"Bearer {token('hq', user='hq-1')}"}
JOINT = "net-beijing"
SKU = "lychee-500g"
SANLITUN = {"lat": 39.9339, "lng": 116.4547}
STORES = {  # room: (lat, lng, delivery radius m, stock)
    "s-guomao": (39.9087, 116.4605, 8_000, 2),
    "s-wangjing": (39.9964, 116.4703, 8_000, 50),
    "s-zgc": (39.9835, 116.3162, 3_000, 50),
}


async def _chain(http: httpx.AsyncClient, stores: dict[str, tuple[float, float, int, int]]) -> None:
    for room, (lat, lng, radius, stock) in stores.items():
        body = {"name": f"门店 {room}", "lat": lat, "lng": lng, "delivery_radius_m": radius}
        assert (await http.put(f"/api/rooms/{room}", json=body, headers=HQ)).status_code == 200
        product = {"name": "岭南荔枝 500g", "price": 1990, "stock": stock}
        r = await http.put(f"/api/rooms/{room}/products/{SKU}", json=product, headers=HQ)
        assert r.status_code == 200, r.text
    joint = {"name": "北京联播", "kind": "network", "stores": list(stores)}
    assert (await http.put(f"/api/rooms/{JOINT}", json=joint, headers=HQ)).status_code == 200
    product = {"name": "岭南荔枝 500g", "price": 1790, "stock": 0}
    assert (
        await http.put(f"/api/rooms/{JOINT}/products/{SKU}", json=product, headers=HQ)
    ).status_code == 200


async def _live(srv_ws: str) -> Client:
    host = await Client.connect(srv_ws)
    await host.hello(token("broadcaster", user="hq-host", room=JOINT))
    live = await host.request({"type": "go_live"}, "live")
    assert live["type"] == "live", live
    return host


@pytest.fixture
async def srv(redis: Redis, redis_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with server_off_air(redis_url, tmp_path, rooms=()) as server:
        yield server


def _buy(rid: str, qty: int = 1, **fulfilment: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "buy", "request_id": rid, "sku": SKU, "qty": qty}
    if fulfilment:
        msg["fulfilment"] = fulfilment
    return msg


async def test_a_buy_goes_to_the_nearest_store_with_stock_or_the_chosen_one(
    srv: RunningServer, redis: Redis
) -> None:
    async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
        await _chain(http, STORES)
        bad = await http.put(
            f"/api/rooms/{JOINT}",
            json={"name": "x", "kind": "network", "stores": ["nope"]},
            headers=HQ,
        )
        assert bad.status_code == 404
        host = await _live(srv.ws_url(JOINT))
        buyer = await Client.connect(srv.ws_url(JOINT))
        try:
            await buyer.hello(token(user="v1"))
            deliver = {"method": "delivery", "address": "三里屯 1 号", **SANLITUN}
            # 国贸 is nearest and has 2: the first order of 2 goes there
            a = await buyer.request(_buy("r1", 2, **deliver), "order_ack")
            assert a.get("store"), a
            assert (a["status"], a["store"], a["route"]["rule"]) == (
                "accepted",
                "s-guomao",
                "nearest_in_stock",
            ), a
            expected = distance_m(SANLITUN["lat"], SANLITUN["lng"], 39.9087, 116.4605)
            assert abs(a["route"]["distance_m"] - expected) <= 1
            assert a["unit_price"] == 1790  # the joint room's price
            # 国贸 is out now: the next goes to 望京
            b = await buyer.request(_buy("r2", 1, **deliver), "order_ack")
            assert (b["status"], b["store"]) == ("accepted", "s-wangjing"), b
            # a retry of r1 is the same order at the same store
            again = await buyer.request(_buy("r1", 2, **deliver), "order_ack")
            assert (again["order_id"], again["store"]) == (a["order_id"], "s-guomao")
            # the chosen pickup store, far as it is
            c = await buyer.request(_buy("r3", 1, method="pickup", store="s-zgc"), "order_ack")
            assert (c["status"], c["store"], c["route"]["rule"]) == ("accepted", "s-zgc", "chosen")
            assert c["pickup_code"]
            # the store's clerk readies it: the buyer hears it in the joint room
            clerk = {"Authorization": f"Bearer {token('staff', user='clerk', room='s-zgc')}"}
            ready = await http.post(
                f"/api/orders/{c['order_id']}/state", json={"state": "ready"}, headers=clerk
            )
            assert ready.status_code == 200, ready.text
            moved = await buyer.wait_for(
                lambda m: (
                    m["type"] == "order"
                    and m["order_id"] == c["order_id"]
                    and m["state"] == "ready"
                ),
                timeout=5,
            )
            assert (moved["via"], moved["store"], moved["route"]["rule"]) == (
                JOINT,
                "s-zgc",
                "chosen",
            )
            # the buyer cancels a routed order from the joint room: the store gets its unit back
            undo = await buyer.request(_buy("r5", 1, method="pickup", store="s-zgc"), "order_ack")
            cancel = {"type": "cancel", "request_id": "x5", "order_id": undo["order_id"]}
            cancelled = await buyer.request(cancel, "cancel_ack")
            assert cancelled["status"] == "cancelled", cancelled
            offer = await buyer.request(
                {**_buy("r6", 1, **deliver), "offer_id": "of_x"}, "order_ack"
            )
            assert (offer["status"], offer["reason"]) == ("rejected", "offer_ended")
            # nobody delivers 500 units there
            d = await buyer.request(_buy("r4", 60, **deliver), "order_ack")
            assert (d["status"], d["reason"]) == ("rejected", "no_store")
            # a reload: the welcome lists the buyer's orders in the member stores
            again_in = await Client.connect(srv.ws_url(JOINT))
            try:
                welcome = await again_in.hello(token(user="v1"))
                mine = {o["order_id"]: o for o in welcome["state"]["my_orders"]}
                assert set(mine) == {a["order_id"], b["order_id"], c["order_id"], undo["order_id"]}
                assert mine[undo["order_id"]]["state"] == "cancelled"
                assert mine[c["order_id"]]["state"] == "ready"
                assert welcome["state"]["kind"] == "network"
                assert welcome["state"]["stores"] == list(STORES)
            finally:
                await again_in.close()
            # the joint room shows the members' sum
            await buyer.wait_for(
                lambda m: m["type"] == "stock" and m["sku"] == SKU and m["left"] == 0 + 49 + 49,
                timeout=5,
            )
        finally:
            await buyer.close()
            await host.close()
        # each store's own stock moved only by its own orders
        for room, left in (("s-guomao", 0), ("s-wangjing", 49), ("s-zgc", 49)):
            assert int(await redis.hget(RoomKeys.of(room).stock, SKU)) == left

        # the store's board sees its routed order with the route
        async def stored() -> list[tuple[object, ...]] | None:
            db = await open_database(srv.settings.database)
            try:
                rows = await db.fetch(
                    "SELECT room_id, via, route_rule, unit_price FROM orders ORDER BY room_id"
                )
            finally:
                await db.close()
            return rows if len(rows) == 4 else None

        rows = await eventually(stored, timeout=10)
        assert sorted(tuple(r) for r in rows) == [
            ("s-guomao", JOINT, "nearest_in_stock", 1790),
            ("s-wangjing", JOINT, "nearest_in_stock", 1790),
            ("s-zgc", JOINT, "chosen", 1790),
            ("s-zgc", JOINT, "chosen", 1790),
        ]


@pytest.mark.slow
async def test_1000_buyers_at_once_oversell_no_store(srv: RunningServer, redis: Redis) -> None:
    rng = random.Random(7)
    stores = {
        f"s{i:02d}": (
            39.85 + rng.random() * 0.2,
            116.35 + rng.random() * 0.2,
            20_000,
            rng.randrange(0, 60),
        )
        for i in range(20)
    }
    async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
        await _chain(http, stores)
    services = srv.runtime.services
    assert services is not None
    host = await _live(srv.ws_url(JOINT))
    try:
        from liveshop.core import protocol as p

        async def one(i: int) -> p.OrderAck:
            where = p.DeliveryIn(
                address="x", lat=39.85 + rng.random() * 0.2, lng=116.35 + rng.random() * 0.2
            )
            return await services.joint.buy(
                JOINT, f"u{i}", p.Buy(request_id=f"r{i}", sku=SKU, qty=1, fulfilment=where)
            )

        acks = await asyncio.gather(*(one(i) for i in range(1000)))
    finally:
        await host.close()
    accepted = [a for a in acks if a.status == "accepted"]
    total = sum(s[3] for s in stores.values())
    assert len(accepted) == min(1000, total)
    assert {a.reason for a in acks if a.status == "rejected"} <= {"no_store"}
    for room, (_lat, _lng, _radius, stock) in stores.items():
        keys = RoomKeys.of(room)
        left, sold = [int(await redis.hget(k, SKU) or 0) for k in (keys.stock, keys.sold)]
        assert left >= 0 and left + sold == stock, room
        assert sold == sum(1 for a in accepted if a.store == room), room


@pytest.mark.slow
async def test_a_retry_after_sigkill_goes_to_the_same_store_once(
    domain: tuple[Rooms, Inventory], redis_url: str, tmp_path: Path, redis: Redis
) -> None:
    a = ServerProcess(tmp_path / "a", redis_url=redis_url).start()
    b = ServerProcess(tmp_path / "b", redis_url=redis_url).start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{a.port}", timeout=10 * UNIT
        ) as http:
            await _chain(http, STORES)
        host = await _live(b.ws_url(JOINT))
        await asyncio.sleep(1.0 * UNIT)  # both processes' sweeps know the joint room
        deliver = {"method": "delivery", "address": "三里屯 1 号", **SANLITUN}
        buyer = await Client.connect(a.ws_url(JOINT))
        await buyer.hello(token(user="k1"))
        await buyer.send(_buy("kill-1", 1, **deliver))
        a.kill()  # mid-request: before, during or after the store's script
        await buyer.close()
        retry = await Client.connect(b.ws_url(JOINT))
        await retry.hello(token(user="k1"))
        ack = await retry.request(_buy("kill-1", 1, **deliver), "order_ack")
        again = await retry.request(_buy("kill-1", 1, **deliver), "order_ack")
        assert ack["status"] == "accepted" and ack["store"] == "s-guomao", ack
        assert (again["order_id"], again["store"]) == (ack["order_id"], ack["store"])
        # exactly one order for this request in every store together
        sold = [int(await redis.hget(RoomKeys.of(room).sold, SKU) or 0) for room in STORES]
        assert sold == [1, 0, 0]
        await retry.close()
        await host.close()
    finally:
        a.stop()
        b.stop()


@pytest.mark.slow
async def test_routing_works_with_the_stores_on_other_shards(cluster_server: RunningServer) -> None:
    from redis.asyncio.cluster import RedisCluster

    redis = cluster_server.runtime.redis
    assert isinstance(redis, RedisCluster)
    async with httpx.AsyncClient(base_url=cluster_server.http, timeout=10 * UNIT) as http:
        await _chain(http, STORES)
    nodes = {redis.get_node_from_key(RoomKeys.of(room).stock).name for room in [*STORES, JOINT]}
    assert len(nodes) >= 2  # the joint room and its stores do not share one shard
    host = await _live(cluster_server.ws_url(JOINT))
    buyer = await Client.connect(cluster_server.ws_url(JOINT))
    try:
        await buyer.hello(token(user="c1"))
        deliver = {"method": "delivery", "address": "三里屯 1 号", **SANLITUN}
        acks = [await buyer.request(_buy(f"c{i}", 1, **deliver), "order_ack") for i in range(3)]
        assert [a["store"] for a in acks] == ["s-guomao", "s-guomao", "s-wangjing"], acks
        repeat = await buyer.request(_buy("c0", 1, **deliver), "order_ack")
        assert repeat["order_id"] == acks[0]["order_id"]
        # a move in the store's slot (another shard) reaches the buyer in the joint room
        pickup = await buyer.request(_buy("c9", 1, method="pickup", store="s-zgc"), "order_ack")
        clerk = {"Authorization": f"Bearer {token('staff', user='clerk', room='s-zgc')}"}
        async with httpx.AsyncClient(base_url=cluster_server.http, timeout=10 * UNIT) as http:
            r = await http.post(
                f"/api/orders/{pickup['order_id']}/state", json={"state": "ready"}, headers=clerk
            )
            assert r.status_code == 200, r.text
        await buyer.wait_for(
            lambda m: (
                m["type"] == "order"
                and m["order_id"] == pickup["order_id"]
                and m["state"] == "ready"
            ),
            timeout=5,
        )
    finally:
        await buyer.close()
        await host.close()
    sold = [int(await redis.hget(RoomKeys.of(room).sold, SKU) or 0) for room in STORES]
    assert sold == [2, 1, 1]
