"""Orders after the tap through a real server: sockets, REST, the database.

The buyer's sockets get `order` on every change (also on another process), welcome
carries `my_orders`; the store's counter and board over HTTP; the payment provider's
signed notification; refunds carried out by the refund loop; states and events in the
order database exactly once, in order; holds due while every process was killed expire
within 2 s of their `pay_by` after the restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from redis.asyncio import Redis

from liveshop.commerce.groups import Groups
from liveshop.commerce.inventory import Inventory
from liveshop.commerce.order_book import OrderBook, QrSigner
from liveshop.commerce.refunds import Refund, RefundLedger
from liveshop.commerce.rooms import Rooms
from liveshop.core import protocol as p
from liveshop.core.keys import RoomKeys
from liveshop.engine.database import open_database, sqlite_url
from liveshop.engine.scripts import Scripts
from tests.conftest import ROOM, seeded_server
from tests.databases import database_for_test
from tests.support import (
    UNIT,
    Client,
    RunningServer,
    ServerProcess,
    eventually,
    settings_for,
    token,
)

PAYMENT_SECRET = "payment-secret-for-tests-0123"
DELIVERY_SECRET = "delivery-secret-for-tests-0123"
STAFF = {"Authorization": f"Bearer {token('staff', user='clerk-1', room=ROOM)}"}
SKU = "lychee-500g"


class CountingProvider:
    """A refund provider that answers `done`, once per key, and counts every call."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.refunded: dict[str, int] = {}

    async def refund(self, refund: Refund) -> Literal["done", "failed"]:
        self.calls.append(refund.key)
        self.refunded.setdefault(refund.key, refund.amount)
        return "done"


@pytest.fixture
async def shop(redis: Redis, redis_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    provider = CountingProvider()
    async with (
        database_for_test(tmp_path) as database_url,
        seeded_server(
            settings_for(
                redis_url,
                tmp_path,
                database_url=database_url,
                payment_secret=PAYMENT_SECRET,
                delivery_secret=DELIVERY_SECRET,
                sweep_interval_s=0.1,
            ),
            refund_provider=provider,
        ) as srv,
    ):
        srv.provider = provider  # type: ignore[attr-defined]
        yield srv


async def http(srv: RunningServer, method: str, path: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as client:
        return await client.request(method, path, **kw)


def signed(body: dict[str, Any], secret: str = PAYMENT_SECRET) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    sig = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {"content": raw, "headers": {"X-Liveshop-Signature": sig}}


async def buyer(srv: RunningServer, user: str = "u1") -> Client:
    client = await Client.connect(srv.ws_url(ROOM))
    await client.hello(token("viewer", user=user, room=ROOM))
    return client


async def buy(client: Client, request_id: str, qty: int = 1, **extra: Any) -> dict[str, Any]:
    msg = {"type": "buy", "request_id": request_id, "sku": SKU, "qty": qty, **extra}
    return await client.request(msg, "order_ack")


async def next_order(client: Client, order_id: str, state: str) -> dict[str, Any]:
    return await client.wait_for(
        lambda m: m["type"] == "order" and m["order_id"] == order_id and m["state"] == state,
        timeout=5 * UNIT,
    )


async def test_every_socket_of_the_buyer_hears_each_change_and_others_do_not(
    shop: RunningServer,
) -> None:
    phone, laptop, neighbour = await buyer(shop), await buyer(shop), await buyer(shop, "u2")
    ack = await buy(phone, "r-1", 2)
    assert ack["status"] == "accepted" and ack["state"] == "accepted"
    order_id = ack["order_id"]
    for client in (phone, laptop):
        created = await next_order(client, order_id, "accepted")
        assert (
            created["version"] == 1 and created["fulfilment"]["pickup_code"] == ack["pickup_code"]
        )
        assert "~" in created["fulfilment"]["qr"]
    resp = await http(
        shop, "POST", f"/api/orders/{order_id}/state", json={"state": "ready"}, headers=STAFF
    )
    assert resp.status_code == 200, resp.text
    for client in (phone, laptop):
        ready = await next_order(client, order_id, "ready")
        assert ready["version"] == 2 and ready["fulfilment"]["pickup_by"] > time.time() * 1000
    await asyncio.sleep(0.2 * UNIT)
    assert not neighbour.of_type("order")
    # a new socket (a reload) gets the order in welcome
    reload = await Client.connect(shop.ws_url(ROOM))
    welcome = await reload.hello(token("viewer", user="u1", room=ROOM))
    [mine] = welcome["state"]["my_orders"]
    assert (mine["order_id"], mine["state"], mine["version"]) == (order_id, "ready", 2)
    me = await http(
        shop,
        "GET",
        f"/api/me/orders?room_id={ROOM}",
        headers={"Authorization": f"Bearer {token('viewer', user='u1', room=ROOM)}"},
    )
    assert [o["order_id"] for o in me.json()["orders"]] == [order_id]
    for client in (phone, laptop, neighbour, reload):
        await client.close()


async def test_counter_verify_answers_and_undo_over_http(shop: RunningServer) -> None:
    client = await buyer(shop)
    ack = await buy(client, "r-1")
    order_id, code = ack["order_id"], ack["pickup_code"]
    verify = f"/api/rooms/{ROOM}/pickups/verify"
    not_ready = await http(shop, "POST", verify, json={"code": code}, headers=STAFF)
    assert (not_ready.status_code, not_ready.json()["error"]["code"]) == (409, "not_ready")
    await http(
        shop, "POST", f"/api/orders/{order_id}/state", json={"state": "ready"}, headers=STAFF
    )
    ok = await http(shop, "POST", verify, json={"code": code}, headers=STAFF)
    assert ok.status_code == 200 and ok.json()["status"] == "verified"
    assert ok.json()["order"]["state"] == "picked_up"
    again = await http(shop, "POST", verify, json={"code": code}, headers=STAFF)
    err = again.json()["error"]
    assert again.status_code == 409 and err["code"] == "already_verified"
    assert err["verified_by"] == "clerk-1" and err["verified_at"] > 0
    await next_order(client, order_id, "picked_up")
    undo = await http(shop, "POST", f"/api/orders/{order_id}/undo_verify", headers=STAFF)
    assert undo.status_code == 200 and undo.json()["order"]["state"] == "ready"
    # another store's staff, bad input, another store's room
    other = {"Authorization": f"Bearer {token('staff', user='x', room='s002')}"}
    assert (await http(shop, "POST", verify, json={"code": code}, headers=other)).status_code == 403
    bad = await http(shop, "POST", verify, json={"code": "12ab"}, headers=STAFF)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_message"
    wrong = await http(shop, "POST", verify, json={"qr": "o_x.s001~00"}, headers=STAFF)
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "not_found"
    board = await http(shop, "GET", f"/api/rooms/{ROOM}/orders?state=ready", headers=STAFF)
    await client.close()
    assert board.status_code == 200


async def test_payment_notification_signed_checked_and_idempotent(shop: RunningServer) -> None:
    await http(
        shop,
        "PUT",
        f"/api/rooms/{ROOM}",
        json={"name": "鲜果社区店", "payment": "required"},
        headers={"Authorization": f"Bearer {token('hq', user='hq')}"},
    )
    client = await buyer(shop)
    ack = await buy(client, "r-1", 2)
    assert ack["state"] == "awaiting_payment" and ack["pay_by"] > time.time() * 1000
    stock = await client.wait_for(lambda m: m["type"] == "stock" and m.get("held") == 2)
    assert stock["left"] == 198
    order_id, total = ack["order_id"], 2 * ack["unit_price"]
    note = {"order_id": order_id, "txn_id": "wx-1", "amount": total, "paid_at": 1}
    unsigned = await http(shop, "POST", "/api/payments/notify", content=json.dumps(note))
    assert unsigned.status_code == 401
    forged = await http(shop, "POST", "/api/payments/notify", **signed(note, "wrong-secret-xx"))
    assert forged.status_code == 401
    short = await http(shop, "POST", "/api/payments/notify", **signed({**note, "amount": 1}))
    assert short.status_code == 409 and short.json()["error"]["code"] == "amount_mismatch"
    paid = await http(shop, "POST", "/api/payments/notify", **signed(note))
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    repeat = await http(shop, "POST", "/api/payments/notify", **signed(note))
    assert repeat.content == paid.content
    await next_order(client, order_id, "paid")
    # the buyer cancels a paid order: units back, one refund, done by the refund loop
    cancel = await client.request(
        {"type": "cancel", "request_id": "c-1", "order_id": order_id}, "cancel_ack"
    )
    assert cancel["status"] == "cancelled"
    refunded = await client.wait_for(
        lambda m: m["type"] == "order" and (m.get("refund") or {}).get("state") == "done",
        timeout=10 * UNIT,
    )
    assert refunded["refund"]["amount"] == total and refunded["state"] == "cancelled"
    again = await client.request(
        {"type": "cancel", "request_id": "c-2", "order_id": order_id}, "cancel_ack"
    )
    assert again["status"] == "cancelled"
    provider: CountingProvider = shop.provider  # type: ignore[attr-defined]
    assert provider.refunded == {f"{order_id}|cancelled": total}

    async def settled() -> dict[str, Any] | None:
        # the engine hears first (the buyer's message), the ledger row right after
        got = await http(shop, "GET", f"/api/rooms/{ROOM}/refunds", headers=STAFF)
        [row] = got.json()["refunds"]
        return row if row["state"] == "done" else None

    row = await eventually(settled, timeout=5)
    assert (row["order_id"], row["state"], row["amount"]) == (order_id, "done", total)
    await client.close()


async def test_delivery_out_of_range_and_callbacks(shop: RunningServer) -> None:
    hq = {"Authorization": f"Bearer {token('hq', user='hq')}"}
    await http(
        shop,
        "PUT",
        f"/api/rooms/{ROOM}",
        headers=hq,
        json={"name": "鲜果社区店", "lat": 22.5431, "lng": 114.0579, "delivery_radius_m": 2000},
    )
    client = await buyer(shop)
    far = await buy(
        client,
        "r-far",
        fulfilment={"method": "delivery", "address": "罗湖", "lat": 22.5480, "lng": 114.1300},
    )
    assert (far["status"], far["reason"]) == ("rejected", "out_of_range")
    near = await buy(
        client,
        "r-near",
        fulfilment={
            "method": "delivery",
            "address": "花园路 8 号",
            "lat": 22.5440,
            "lng": 114.0600,
        },
    )
    assert near["status"] == "accepted" and "pickup_code" not in near
    order_id = near["order_id"]
    bad = await client.request(
        {
            "type": "buy",
            "request_id": "r-bad",
            "sku": SKU,
            "qty": 1,
            "fulfilment": {"method": "delivery"},
        },
        "error",
    )
    assert bad["code"] == "bad_message"
    out = await http(
        shop,
        "POST",
        f"/api/orders/{order_id}/state",
        headers=STAFF,
        json={"state": "out_for_delivery"},
    )
    assert out.status_code == 200
    for status in ["delivered", "picked", "assigned", "delivered"]:
        resp = await http(
            shop,
            "POST",
            "/api/deliveries/notify",
            **signed({"order_id": order_id, "status": status}, DELIVERY_SECRET),
        )
        assert resp.status_code == 200
    done = await next_order(client, order_id, "delivered")
    assert done["delivery_status"] == "delivered"
    illegal = await http(
        shop, "POST", f"/api/orders/{order_id}/state", headers=STAFF, json={"state": "ready"}
    )
    assert illegal.status_code == 409 and illegal.json()["error"]["code"] == "illegal_transition"
    await client.close()


async def test_states_and_events_reach_the_database_once_in_order(shop: RunningServer) -> None:
    client = await buyer(shop)
    acks = [await buy(client, f"r-{i}") for i in range(5)]
    for ack in acks[:3]:
        await http(
            shop,
            "POST",
            f"/api/orders/{ack['order_id']}/state",
            json={"state": "ready"},
            headers=STAFF,
        )
        await http(
            shop,
            "POST",
            f"/api/rooms/{ROOM}/pickups/verify",
            json={"code": ack["pickup_code"]},
            headers=STAFF,
        )
    await client.request(
        {"type": "cancel", "request_id": "c", "order_id": acks[3]["order_id"]}, "cancel_ack"
    )
    runtime = shop.runtime
    assert runtime.persister is not None and runtime.orders is not None
    await runtime.persister.drain()
    await runtime.persister.drain()  # a second drain stores nothing twice
    rows = {o.order_id: o for o in await runtime.orders.list(room_id=ROOM)}
    assert [rows[a["order_id"]].state for a in acks] == [
        "picked_up",
        "picked_up",
        "picked_up",
        "cancelled",
        "accepted",
    ]
    assert rows[acks[0]["order_id"]].version == 3
    events = await runtime.orders.events(acks[0]["order_id"])
    assert [(e["version"], e["from_state"], e["to_state"], e["by_path"]) for e in events] == [
        (1, "", "accepted", "purchase"),
        (2, "accepted", "ready", "staff"),
        (3, "ready", "picked_up", "verify"),
    ]
    assert events[2]["actor"] == "clerk-1"
    # reconciliation sees a cancelled order's units back on the shelf, not lost
    figures = (await runtime.reconciler.check())[ROOM]  # type: ignore[union-attr]
    assert (figures.delta, figures.unexplained) == (0, 0)
    await client.close()


@pytest.mark.slow
async def test_holds_due_while_every_process_was_killed_expire_after_restart(
    domain: tuple[Rooms, Inventory], redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    """SIGKILL of every process while 500 holds are due: after the restart each expires
    within 2 s of its pay_by, or of the restart for those that fell due while none ran."""
    _, inventory = domain
    keys = RoomKeys.of(ROOM)
    await inventory.put_product(ROOM, SKU, name="荔枝", price=1990, stock=600)
    env = {"LIVESHOP_SWEEP_INTERVAL_S": "0.5"}
    procs = [
        ServerProcess(tmp_path / f"p{i}", redis_url=redis_url, extra_env=env).start()
        for i in range(2)
    ]
    orders: list[str] = []
    # 250 due while every process is down, 250 due after the restart
    for hold_s, first in (("2", 0), ("9", 250)):
        await redis.hset(keys.room, mapping={"payment": "required", "hold_s": hold_s})
        outs = await asyncio.gather(
            *(inventory.buy(ROOM, f"u{n}", "r-1", SKU, 1) for n in range(first, first + 250))
        )
        orders += [o.answer.o for o in outs if o.accepted]
        if first == 0:
            for proc in procs:
                proc.kill()
    assert len(orders) == 500
    assert (await inventory.ledger(ROOM))[SKU] == (100, 500, 0, 600)
    await asyncio.sleep(2.5)  # the first 250 are due now, and no process runs
    assert await redis.zcount(keys.due, "-inf", time.time() * 1000) >= 250
    restarted = [
        ServerProcess(tmp_path / f"q{i}", redis_url=redis_url, extra_env=env).start()
        for i in range(2)
    ]
    back_at = time.time() * 1000
    try:

        async def all_expired() -> bool:
            return (await inventory.ledger(ROOM))[SKU] == (600, 0, 0, 600)

        await eventually(all_expired, timeout=20 * UNIT)
        late = []
        for order_id in orders:
            order = json.loads(await redis.get(keys.prefix + "order:" + order_id) or b"{}")
            assert order["state"] == "expired"
            due = max(int(order["pay_by"]), back_at)
            moved = int(order["updated_at"])
            assert moved >= int(order["pay_by"])  # never early
            late.append(moved - due)
        assert max(late) <= 2000, max(late)
    finally:
        for proc in restarted:
            proc.stop()


async def test_a_group_over_real_sockets(shop: RunningServer) -> None:
    """The console starts a group, two viewers join over their sockets, everyone in the
    room hears the progress, the joins reach the threshold and both orders move on."""
    console = await Client.connect(shop.ws_url(ROOM))
    await console.hello(token("broadcaster", user="host", room=ROOM))
    await console.send(
        {
            "type": "group_start",
            "sku": SKU,
            "price": 1490,
            "threshold": 2,
            "duration_s": 600,
            "cap": 20,
            "per_user_limit": 2,
        }
    )
    started = await console.wait_for(lambda m: m["type"] == "group" and m["status"] == "open")
    group_id = started["group_id"]
    a, b = await buyer(shop, "u1"), await buyer(shop, "u2")
    welcome_groups = (await (await Client.connect(shop.ws_url(ROOM))).hello())["state"]["groups"]
    assert [g["group_id"] for g in welcome_groups] == [group_id]
    join = {"type": "group_join", "group_id": group_id, "qty": 1}
    ack_a = await a.request({**join, "request_id": "j-1"}, "order_ack")
    assert (ack_a["status"], ack_a["state"], ack_a["group_id"]) == (
        "accepted",
        "pending_group",
        group_id,
    )
    ack_b = await b.request({**join, "request_id": "j-1"}, "order_ack")
    assert ack_b["status"] == "accepted"
    done = await console.wait_for(
        lambda m: m["type"] == "group" and m["status"] == "succeeded", timeout=5 * UNIT
    )
    assert (done["value"], done["left"]) == (2, 18)
    await next_order(a, ack_a["order_id"], "accepted")
    await next_order(b, ack_b["order_id"], "accepted")
    over = await a.request({**join, "request_id": "j-2", "qty": 2}, "order_ack")
    assert (over["status"], over["reason"]) == ("rejected", "limit_exceeded")
    viewer = await Client.connect(shop.ws_url(ROOM))
    await viewer.hello()
    anon = await viewer.request({**join, "request_id": "j-9"}, "error")
    assert anon["code"] == "unauthorized"
    forbidden = await a.request({"type": "group_cancel", "group_id": group_id}, "error")
    assert forbidden["code"] == "forbidden"
    for client in (console, a, b, viewer):
        await client.close()


@pytest.mark.slow
async def test_killing_the_process_that_closes_a_group_refunds_each_member_once(
    domain: tuple[Rooms, Inventory], redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    """Ten failed groups of 300 paid members each (a close spans two batches): each
    group falls due while a process sweeps, and that process is SIGKILLed at a random
    moment of it; after a last process, every member is cancelled with exactly one
    refund, in the engine and in the database, and every unit is back."""
    _, inventory = domain
    keys = RoomKeys.of(ROOM)
    await inventory.put_product(ROOM, SKU, name="荔枝", price=1990, stock=3000)
    await redis.hset(keys.room, mapping={"payment": "required", "hold_s": "900"})
    scripts = Scripts(redis)
    book = OrderBook(scripts, redis, QrSigner("k"))
    groups = Groups(scripts, idempotency_ttl_s=3600)
    members: list[str] = []
    group_ids = []
    # 32 members at a time: the pool (64 connections, a 1 s wait) stays clear of its
    # limit on a loaded machine; the joins are not what this test is about
    gate = asyncio.Semaphore(32)
    for g in range(10):
        group = await groups.start(
            ROOM,
            p.GroupStart(
                sku=SKU, price=1490, threshold=1000, duration_s=600, cap=300, per_user_limit=1
            ),
        )
        group_ids.append(group.group_id)

        async def member(n: int, gid: str = group.group_id, tag: int = g) -> str:
            async with gate:
                out = await groups.join(
                    ROOM, f"u{tag}-{n}", p.GroupJoin(request_id="j", group_id=gid, qty=1)
                )
                await book.pay(out.answer.o, f"t-{tag}-{n}", 1490, 1)
            return out.answer.o

        members += await asyncio.gather(*(member(n) for n in range(300)))
    assert (await inventory.ledger(ROOM))[SKU] == (0, 0, 3000, 3000)
    shared_db = sqlite_url(tmp_path / "orders.db")  # every process stores into one database
    env = {"LIVESHOP_SWEEP_INTERVAL_S": "0.02", "LIVESHOP_DATABASE_URL": shared_db}
    rng = random.Random(11)
    for attempt, group_id in enumerate(group_ids):
        proc = ServerProcess(tmp_path / f"k{attempt}", redis_url=redis_url, extra_env=env)
        proc.start()  # returns once ready: its sweeper is running
        past = int(time.time() * 1000) - 1
        await redis.hset(keys.group(group_id), "ends_at", str(past))
        await redis.zadd(keys.due, {f"group:{group_id}": past})
        await asyncio.sleep(rng.uniform(0.0, 0.06))
        proc.kill()
    final = ServerProcess(tmp_path / "final", redis_url=redis_url, extra_env=env).start()
    try:

        async def all_cancelled() -> bool:
            return await redis.hlen(keys.refunds) == len(members) and (
                await inventory.ledger(ROOM)
            )[SKU] == (3000, 0, 0, 3000)

        await eventually(all_cancelled, timeout=30 * UNIT)
        refunds = await redis.hgetall(keys.refunds)
        assert sorted(refunds) == sorted(f"{o}|cancelled".encode() for o in members)
        for order_id in members[::37]:
            found = await book.get(order_id)
            assert found is not None and found[0].state == "cancelled"
            assert found[0].refund is not None and found[0].refund.amount == 1490

        async def all_stored() -> bool:
            return await redis.xlen(keys.outbox) == 0

        # every entry stored and deleted: none left acknowledged but undeleted by a kill
        await eventually(all_stored, timeout=20 * UNIT)
    finally:
        final.stop()
    # what reached the database: one refund row per member, whichever process stored it
    db = await open_database(shared_db)
    try:
        rows = await RefundLedger(db).recent(room_id=ROOM, limit=10_000)
    finally:
        await db.close()
    assert sorted(r.order_id for r in rows) == sorted(members)
    assert {r.reason for r in rows} == {"cancelled"}


async def test_hq_opens_a_deal_across_stores_and_a_viewer_joins_it(
    shop: RunningServer,
) -> None:
    services = shop.runtime.services
    assert services is not None
    from tests.conftest import seed_room

    await seed_room(services.rooms, services.inventory, "s002")
    hq = {"Authorization": f"Bearer {token('hq', user='hq')}"}
    body = {
        "rooms": [ROOM, "s002"],
        "sku": SKU,
        "price": 1290,
        "threshold": 2,
        "duration_s": 600,
        "stock": 100,
        "per_user_limit": 1,
    }
    refused = await http(shop, "POST", "/api/groups", json=body, headers=STAFF)
    assert refused.status_code == 403
    bad = await http(shop, "POST", "/api/groups", json={**body, "rooms": ["nope"]}, headers=hq)
    assert bad.status_code == 404
    made = await http(shop, "POST", "/api/groups", json=body, headers=hq)
    assert made.status_code == 200, made.text
    deal = made.json()["group"]
    assert deal["rooms"] == [ROOM, "s002"] and deal["status"] == "open"
    here = await buyer(shop, "u1")
    there = await Client.connect(shop.ws_url("s002"))
    welcome = await there.hello(token("viewer", user="u2", room="s002"))
    assert [g["group_id"] for g in welcome["state"]["groups"]] == [deal["group_id"]]
    join = {"type": "group_join", "group_id": deal["group_id"], "qty": 1}
    a = await here.request({**join, "request_id": "j"}, "order_ack")
    b = await there.request({**join, "request_id": "j"}, "order_ack")
    assert a["order_id"].endswith(f".{ROOM}") and b["order_id"].endswith(".s002")
    await there.wait_for(
        lambda m: m["type"] == "group" and m["status"] == "succeeded", timeout=5 * UNIT
    )
    await next_order(here, a["order_id"], "accepted")
    await next_order(there, b["order_id"], "accepted")
    got = await http(shop, "GET", f"/api/groups/{deal['group_id']}", headers=hq)
    assert got.json()["group"]["value"] == 2
    for client in (here, there):
        await client.close()
