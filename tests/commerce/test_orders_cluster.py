"""The persister on a three-master Redis Cluster: rooms on every shard, every acked
order in SQLite exactly once, through a persister restart and a primary's kill -9."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.order_book import OrderBook, QrSigner
from liveshop.commerce.order_states import By, State
from liveshop.commerce.orders import OrderStore, Persister
from liveshop.commerce.rooms import Rooms
from liveshop.core.keys import OUTBOX_GROUP, RoomKeys
from liveshop.engine.connections import connect_cluster
from liveshop.engine.database import open_database, sqlite_url
from liveshop.engine.scripts import Scripts
from tests.cluster import LocalCluster
from tests.conftest import seed_room
from tests.support import eventually

pytestmark = pytest.mark.slow


class ClusterShop:
    def __init__(
        self, redis: RedisCluster, rooms: Rooms, inventory: Inventory, scripts: Scripts
    ) -> None:
        self.redis = redis
        self.rooms = rooms
        self.inventory = inventory
        self.inventory_scripts = scripts


@pytest.fixture
async def shop(redis_cluster: LocalCluster, tmp_path: Path) -> AsyncIterator[ClusterShop]:
    redis_cluster.flush()
    redis = connect_cluster(redis_cluster.nodes)
    scripts = Scripts(redis, sharded=True)
    await scripts.load_all()
    db = await open_database(sqlite_url(tmp_path / "rooms.db"))
    rooms = Rooms(redis, scripts, db)  # type: ignore[arg-type]
    await rooms.init_schema()
    inventory = Inventory(redis, scripts, idempotency_ttl_s=3600)  # type: ignore[arg-type]
    try:
        yield ClusterShop(redis, rooms, inventory, scripts)
    finally:
        await inventory.aclose()
        await db.close()
        await redis.aclose()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[OrderStore]:
    db = await open_database(sqlite_url(tmp_path / "orders.db"))
    store = OrderStore(db)
    await store.init_schema()
    yield store
    await db.close()


def rooms_on_every_shard(cluster: LocalCluster, count: int) -> list[str]:
    """`count` room ids, spread evenly over the cluster's primaries."""
    per_shard: dict[int, list[str]] = {i: [] for i in range(len(cluster.ports))}
    i = 0
    while sum(len(v) for v in per_shard.values()) < count:
        room = f"r{i:04d}"
        shard = per_shard[cluster.shard_of(RoomKeys.of(room).outbox)]
        if len(shard) < -(-count // len(per_shard)):
            shard.append(room)
        i += 1
    rooms = [r for rs in per_shard.values() for r in rs][:count]
    assert len({cluster.shard_of(RoomKeys.of(r).outbox) for r in rooms}) == min(
        count, len(per_shard)
    )
    return rooms


async def buy_in_each(
    shop: ClusterShop, rooms: list[str], per_room: int, tag: str = "req"
) -> set[str]:
    order_ids = set()
    for room in rooms:
        for n in range(per_room):
            out = await shop.inventory.buy(room, f"u{n}", f"{tag}-{n}", "lychee-500g", 1)
            assert not out.repeat
            assert out.accepted, out
            order_ids.add(out.answer.o)
    return order_ids


async def stored_ids(store: OrderStore) -> list[str]:
    return [o.order_id for o in await store.list(limit=100_000)]


@pytest.mark.parametrize("room_count", [2, 50])
async def test_every_rooms_orders_reach_sqlite_once_on_every_shard(
    redis_cluster: LocalCluster, shop: ClusterShop, store: OrderStore, room_count: int
) -> None:
    rooms = rooms_on_every_shard(redis_cluster, room_count)
    for room in rooms:
        await seed_room(shop.rooms, shop.inventory, room)
    acked = await buy_in_each(shop, rooms, 5)
    persister = Persister(shop.redis, store, batch=7)  # type: ignore[arg-type]
    task = asyncio.create_task(persister.run())
    try:
        # each room's first entry is going live's (its live.started webhook), no order
        await eventually(lambda: persister.stored >= len(acked) + len(rooms), timeout=20)
        ids = await stored_ids(store)
        assert sorted(ids) == sorted(acked)  # every one, none twice
        assert persister.health.failures == 0
        # acknowledged and deleted from every outbox, on every shard
        for room in rooms:
            assert await shop.redis.xlen(RoomKeys.of(room).outbox) == 0
        # later orders keep flowing, in a room that has gone cold too
        late = await buy_in_each(shop, rooms[:1], 3, tag="late")
        await eventually(lambda: persister.stored >= len(acked) + len(rooms) + 3, timeout=10)
        assert sorted(await stored_ids(store)) == sorted(acked | late)
    finally:
        persister.stop()
        await task


async def test_a_new_persister_claims_what_a_dead_one_read_on_every_shard(
    redis_cluster: LocalCluster, shop: ClusterShop, store: OrderStore
) -> None:
    rooms = rooms_on_every_shard(redis_cluster, 6)
    for room in rooms:
        await seed_room(shop.rooms, shop.inventory, room)
    acked = await buy_in_each(shop, rooms, 4)
    for room in rooms:  # a persister read everything, then died before its commit
        outbox = RoomKeys.of(room).outbox
        with contextlib.suppress(ResponseError):  # BUSYGROUP: the room already made it
            await shop.redis.xgroup_create(outbox, OUTBOX_GROUP, id="0")
        read = await shop.redis.xreadgroup(OUTBOX_GROUP, "dead-host:1", {outbox: ">"})
        assert len(read[0][1]) == 1 + 4  # going live's live.started entry, the orders
    fresh = Persister(shop.redis, store, claim_idle_ms=0)  # type: ignore[arg-type]
    assert await fresh.pass_once(block_ms=1) == 0  # nothing new to read
    assert await fresh.drain() == len(rooms) + len(acked)  # claims what the dead one held
    assert await fresh.drain() == 0
    assert sorted(await stored_ids(store)) == sorted(acked)
    for room in rooms:
        pending = await shop.redis.xpending(RoomKeys.of(room).outbox, OUTBOX_GROUP)
        assert pending["pending"] == 0


async def test_a_primary_killed_mid_sale_loses_no_acked_order(
    redis_cluster: LocalCluster, shop: ClusterShop, store: OrderStore
) -> None:
    """Buyers keep tapping in rooms on every shard while one primary is kill -9'd and
    restarted (AOF fsync always): every order acked before, during or after is stored
    once, and the persister loop survives the shard's errors."""
    rooms = rooms_on_every_shard(redis_cluster, 6)
    for room in rooms:
        await seed_room(shop.rooms, shop.inventory, room)
    persister = Persister(shop.redis, store, batch=50)  # type: ignore[arg-type]
    task = asyncio.create_task(persister.run())
    acked: set[str] = set()
    failed = 0
    stop_buying = asyncio.Event()

    async def buyer(room: str) -> None:
        nonlocal failed
        n = 0
        while not stop_buying.is_set():
            with contextlib.suppress(Exception):  # the killed shard's rooms fail for a while
                out = await shop.inventory.buy(room, f"u{n % 9}", f"q{n}", "mango-2pc", 1)
                if out.accepted:
                    acked.add(out.answer.o)
                n += 1
                await asyncio.sleep(0.01)
                continue
            failed += 1
            await asyncio.sleep(0.05)

    victim = redis_cluster.shard_of(RoomKeys.of(rooms[0]).outbox)
    buyers = [asyncio.create_task(buyer(room)) for room in rooms]
    try:
        await eventually(lambda: len(acked) >= 30, timeout=10)
        redis_cluster.kill(victim)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(redis_cluster.restart, victim)
        before = len(acked)
        await eventually(lambda: len(acked) >= before + 30, timeout=30)
        stop_buying.set()
        await asyncio.gather(*buyers)
        sold = 0
        for room in rooms:
            sold += (await shop.inventory.ledger(room))["mango-2pc"][2]

        # (not persister.stored: a commit whose XACK reply the kill cut off is stored and
        # acknowledged, but not counted by the persister)
        async def all_stored() -> bool:
            return len(await stored_ids(store)) >= sold

        await eventually(all_stored, timeout=30)
        stored = await stored_ids(store)
        # Every acked order is stored; a tap whose reply the kill cut off may have sold
        # too (its order is in the AOF): the database holds exactly what the engine sold.
        assert acked <= set(stored)
        assert len(stored) == len(set(stored)) == sold
        assert failed > 0  # the kill really interrupted purchases on that shard
        assert not task.done()  # the loop lived through it
    finally:
        stop_buying.set()
        await asyncio.gather(*buyers, return_exceptions=True)
        persister.stop()
        await task


async def test_orders_after_the_tap_on_every_shard(
    redis_cluster: LocalCluster, shop: ClusterShop, store: OrderStore
) -> None:
    """Holds, payment, ready, verify, expiry and the sweep in rooms on every shard: each
    script touches its room's slot only; states and events reach the database."""
    rooms = rooms_on_every_shard(redis_cluster, 6)
    book = OrderBook(shop.inventory_scripts, shop.redis, QrSigner("cluster"))
    for room in rooms:
        await seed_room(shop.rooms, shop.inventory, room)
        await shop.redis.hset(
            RoomKeys.of(room).room, mapping={"payment": "required", "hold_s": "1"}
        )
    paid, expiring = [], []
    for room in rooms:
        for n in range(2):
            out = await shop.inventory.buy(room, f"u{n}", "r-1", "lychee-500g", 1)
            assert out.accepted and out.answer.t == "awaiting_payment"
            (paid if n == 0 else expiring).append(out.answer.o)
    for order_id in paid:
        await book.pay(order_id, f"t-{order_id}", 1990, 1)
        await book.move(order_id, State.READY, By.STAFF, "staff")
        found = await book.get(order_id)
        assert found is not None and found[0].fulfilment.pickup_code
        room = order_id.rpartition(".")[2]
        code = found[0].fulfilment.pickup_code
        assert (await book.verify(room, "staff", code=code)).status == "verified"
    await asyncio.sleep(1.1)
    assert await book.sweep(rooms) == len(expiring)
    for room in rooms:
        assert (await shop.inventory.ledger(room))["lychee-500g"] == (199, 0, 1, 200)
    await Persister(shop.redis, store).drain()  # type: ignore[arg-type]
    rows = {o.order_id: o.state for o in await store.list(limit=1000)}
    assert {rows[o] for o in paid} == {"picked_up"} and {rows[o] for o in expiring} == {"expired"}
    assert [e["to_state"] for e in await store.events(paid[0])] == [
        "awaiting_payment",
        "paid",
        "ready",
        "picked_up",
    ]
