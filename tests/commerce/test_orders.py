"""The persister: outbox → database exactly once, claims a dead consumer's entries.
Every test runs on SQLite and on PostgreSQL (skipped loudly when PostgreSQL is absent)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from liveshop.app.factory import supervised
from liveshop.commerce.inventory import Inventory
from liveshop.commerce.orders import OrderStore, Persister
from liveshop.commerce.rooms import Rooms
from liveshop.commerce.webhooks import Webhooks
from liveshop.core.keys import OUTBOX_GROUP, RoomKeys
from liveshop.engine.database import open_database, sqlite_url
from tests.conftest import ROOM
from tests.databases import fresh_postgres
from tests.support import eventually

LIVE_ENTRY = 1  # the room went live: its live.started webhook entry is first in the outbox


@pytest.fixture(params=["sqlite", "postgresql"])
async def orders_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "orders.db")
    else:
        async with fresh_postgres() as url:
            yield url


@pytest.fixture
async def store(orders_url: str) -> AsyncIterator[OrderStore]:
    db = await open_database(orders_url)
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
    assert await persister.drain() == 30 + LIVE_ENTRY
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
    assert len(read[0][1]) == 12 + LIVE_ENTRY
    pending = await redis.xpending(outbox, OUTBOX_GROUP)
    assert pending["pending"] == 12 + LIVE_ENTRY
    fresh = Persister(redis, store, claim_idle_ms=0)
    assert await fresh.pass_once(block_ms=1) == 0  # new entries only: nothing
    assert await fresh.drain() == 12 + LIVE_ENTRY  # claims what the dead one held
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
    entry = (await redis.xrange(outbox))[LIVE_ENTRY][1]
    await redis.xadd(outbox, entry)  # a duplicate delivery of the same order
    assert await Persister(redis, store).drain() == 2 + LIVE_ENTRY
    rows = await store.list(room_id=ROOM)
    assert [r.order_id for r in rows] == [out.answer.o]


async def test_the_loop_survives_a_failing_database_and_catches_up(
    domain: tuple[Rooms, Inventory], redis: Redis, store: OrderStore, orders_url: str
) -> None:
    """Not a Redis error (the orders table is gone): logged, counted, retried; once the
    table is back every acked order is stored and health is good again."""
    _, inv = domain
    db = await open_database(orders_url)  # a connection of its own
    await db.execute("ALTER TABLE orders RENAME TO orders_away")
    # claims soon: the first pass may have read all five before failing on them
    persister = Persister(redis, store, block_ms=20, claim_idle_ms=200)
    task = asyncio.create_task(persister.run())
    try:
        acked = [await inv.buy(ROOM, f"u{i}", "r", "lychee-500g", 1) for i in range(5)]
        await eventually(lambda: persister.health.failures >= 2)
        assert persister.health.last_error and "orders" in persister.health.last_error
        assert not task.done()
        await db.execute("ALTER TABLE orders_away RENAME TO orders")
        # stored inside a pass; the pass's success is recorded when it returns
        await eventually(
            lambda: persister.stored >= 5 and persister.health.failures == 0, timeout=10
        )
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


async def test_many_persisters_at_once_store_each_order_once(
    domain: tuple[Rooms, Inventory], redis: Redis, store: OrderStore, orders_url: str
) -> None:
    """Four persisters (as on four machines) drain the same outboxes concurrently, each
    with its own connection: every order is stored exactly once."""
    _, inv = domain
    accepted = [await inv.buy(ROOM, f"u{i}", f"m{i}", "lychee-500g", 1) for i in range(120)]
    handles = [await open_database(orders_url) for _ in range(4)]
    try:
        stores = [OrderStore(db) for db in handles]
        persisters = [Persister(redis, s, batch=9, claim_idle_ms=0) for s in stores]
        for i, persister in enumerate(persisters):
            persister.consumer = f"host{i}:1"
        counts = await asyncio.gather(*(p.drain() for p in persisters))
        assert sum(counts) >= 120  # a claimed entry may be stored twice, never kept twice
        rows = await store.list(room_id=ROOM, limit=1000)
        assert sorted(r.order_id for r in rows) == sorted(o.answer.o for o in accepted)
        assert await store.units_sold(ROOM) == {"lychee-500g": 120}
    finally:
        for db in handles:
            await db.close()


async def test_migrations_apply_once_even_when_processes_start_together(orders_url: str) -> None:
    from liveshop.commerce.orders import MIGRATIONS

    handles = [await open_database(orders_url) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(db.migrate(MIGRATIONS) for db in handles))
        assert sorted(a for a in applied if a) == [[("orders", v) for v in range(1, 5)]]
        assert sorted(await handles[0].fetch("SELECT module, version FROM schema_migrations")) == [
            ("orders", 1),
            ("orders", 2),
            ("orders", 3),
            ("orders", 4),
        ]
    finally:
        for db in handles:
            await db.close()


async def test_going_live_and_ending_are_webhook_rows_from_the_outbox_alone(
    domain: tuple[Rooms, Inventory], redis: Redis, store: OrderStore
) -> None:
    """The session scripts put live.started (with the reserved users, sorted) and
    live.ended in the room's outbox: the persister alone makes them webhook rows, with no
    gateway in between to be killed; going live empties the reservations."""
    rooms, _ = domain
    keys = RoomKeys.of(ROOM)
    await rooms.end_live(ROOM)
    await redis.sadd(keys.reservations, "fan2", "fan1")
    _, session_id = await rooms.go_live(ROOM, "今晚荔枝")
    store.webhooks = Webhooks(store.db, "http://127.0.0.1:9/hooks", "webhook-secret-0123456789")
    await store.webhooks.init_schema()
    await Persister(redis, store).drain()
    rows = await store.db.fetch("SELECT event_id, body FROM webhook_outbox ORDER BY event_id")
    bodies = {str(i): json.loads(str(b)) for i, b in rows}
    started = bodies[f"live.started:{ROOM}:{session_id}"]
    assert started["data"] == {
        "session_id": session_id,
        "title": "今晚荔枝",
        "reserved": ["fan1", "fan2"],
    }
    assert sum(1 for i in bodies if i.startswith(f"live.ended:{ROOM}:")) == 1
    assert await redis.scard(keys.reservations) == 0
