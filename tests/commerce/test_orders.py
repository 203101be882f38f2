"""The persister: outbox → SQLite exactly once, claims a dead consumer's entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from liveshop.app.factory import supervised
from liveshop.commerce.inventory import Inventory
from liveshop.commerce.orders import OrderStore, Persister
from liveshop.commerce.rooms import Rooms
from liveshop.core.keys import OUTBOX_GROUP, RoomKeys
from liveshop.engine.connections import open_database
from tests.conftest import ROOM
from tests.support import eventually


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[OrderStore]:
    db = await open_database(tmp_path / "orders.db")
    store = OrderStore(db)
    await store.init_schema()
    yield store
    await db.close()


async def test_orders_reach_sqlite_once_and_leave_the_outbox(
    domain: tuple[Rooms, Inventory], redis: Redis, store: OrderStore
) -> None:
    _, inv = domain
    accepted = [await inv.buy(ROOM, f"u{i}", "r", "lychee-500g", 1) for i in range(30)]
    persister = Persister(redis, store, batch=7)
    assert await persister.drain() == 30
    assert await persister.drain() == 0
    rows = await store.list(room_id=ROOM, limit=100)
    assert sorted(r.order_id for r in rows) == sorted(o.answer.o for o in accepted)
    assert {r.unit_price for r in rows} == {1990} and {r.qty for r in rows} == {1}
    assert await redis.xlen(RoomKeys.of(ROOM).outbox) == 0


async def test_entries_pending_at_a_dead_consumer_are_stored_once_after_restart(
    domain: tuple[Rooms, Inventory], redis: Redis, store: OrderStore
) -> None:
    _, inv = domain
    accepted = [await inv.buy(ROOM, f"u{i}", "r", "mango-2pc", 2) for i in range(12)]
    outbox = RoomKeys.of(ROOM).outbox
    # A persister reads the entries, then dies before its commit and XACK.
    read = await redis.xreadgroup(OUTBOX_GROUP, "dead-host:1", {outbox: ">"}, count=100)
    assert len(read[0][1]) == 12
    pending = await redis.xpending(outbox, OUTBOX_GROUP)
    assert pending["pending"] == 12
    fresh = Persister(redis, store, claim_idle_ms=0)
    assert await fresh.pass_once(block_ms=1) == 0  # new entries only: nothing
    assert await fresh.drain() == 12  # claims what the dead one held
    assert await fresh.drain() == 0
    rows = await store.list(room_id=ROOM, limit=100)
    assert sorted(r.order_id for r in rows) == sorted(o.answer.o for o in accepted)
    assert (await redis.xpending(outbox, OUTBOX_GROUP))["pending"] == 0


async def test_a_replayed_entry_is_ignored_by_order_id(
    domain: tuple[Rooms, Inventory], redis: Redis, store: OrderStore
) -> None:
    """At-least-once delivery: the same order twice still makes one row."""
    _, inv = domain
    out = await inv.buy(ROOM, "u1", "r", "lychee-500g", 1)
    outbox = RoomKeys.of(ROOM).outbox
    entry = (await redis.xrange(outbox))[0][1]
    await redis.xadd(outbox, entry)  # a duplicate delivery of the same order
    assert await Persister(redis, store).drain() == 2
    rows = await store.list(room_id=ROOM)
    assert [r.order_id for r in rows] == [out.answer.o]


async def test_the_loop_survives_a_failing_database_and_catches_up(
    domain: tuple[Rooms, Inventory], redis: Redis, store: OrderStore, tmp_path: Path
) -> None:
    """Not a Redis error (the orders table is gone): logged, counted, retried; once the
    table is back every acked order is stored and health is good again."""
    _, inv = domain
    db = await open_database(tmp_path / "orders.db")  # a second handle on the same file
    await db.execute("DROP TABLE orders")
    await db.commit()
    persister = Persister(redis, store, block_ms=20)
    task = asyncio.create_task(persister.run())
    try:
        acked = [await inv.buy(ROOM, f"u{i}", "r", "lychee-500g", 1) for i in range(5)]
        await eventually(lambda: persister.health.failures >= 2)
        assert persister.health.last_error and "orders" in persister.health.last_error
        assert not task.done()
        await store.init_schema()
        await eventually(lambda: persister.stored == 5, timeout=10)
        assert persister.health.failures == 0
        rows = await store.list(room_id=ROOM)
        assert sorted(r.order_id for r in rows) == sorted(o.answer.o for o in acked)
    finally:
        persister.stop()
        await task
        await db.close()


async def test_a_background_loop_that_raises_is_restarted() -> None:
    runs: list[int] = []
    restarts: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")

    await asyncio.wait_for(
        supervised("flaky", flaky, on_restart=lambda: restarts.append(1), delay_s=0.01), 5
    )
    assert len(runs) == 3 and len(restarts) == 2
