"""Refunds as a ledger, on the real engine and a real SQLite file: created once per
(order, reason) however often the outbox is delivered, retried with backoff under the
same key until the provider answers, attempted by one process at a time, and shown on
the order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest
from redis.asyncio import Redis

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.order_book import OrderBook, QrSigner
from liveshop.commerce.order_states import By, State
from liveshop.commerce.orders import OrderStore, Persister
from liveshop.commerce.refunds import Refund, Refunder, RefundLedger
from liveshop.commerce.rooms import Rooms
from liveshop.core.keys import RoomKeys
from liveshop.engine.database import open_database, sqlite_url
from liveshop.engine.scripts import Scripts
from tests.conftest import ROOM, seed_room


class Provider:
    """Fails the first `failures` calls per key (a timeout, say), then answers."""

    def __init__(self, failures: int = 0, answer: Literal["done", "failed"] = "done") -> None:
        self.failures = failures
        self.answer: Literal["done", "failed"] = answer
        self.calls: dict[str, int] = {}
        self.paid: dict[str, int] = {}

    async def refund(self, refund: Refund) -> Literal["done", "failed"]:
        n = self.calls[refund.key] = self.calls.get(refund.key, 0) + 1
        await asyncio.sleep(0.01)
        if n <= self.failures:
            raise TimeoutError("provider did not answer")
        if self.answer == "done":
            self.paid.setdefault(refund.key, refund.amount)
        return self.answer


class Parts:
    def __init__(
        self,
        redis: Redis,
        inventory: Inventory,
        book: OrderBook,
        store: OrderStore,
        ledger: RefundLedger,
    ) -> None:
        self.redis = redis
        self.inventory = inventory
        self.book = book
        self.store = store
        self.ledger = ledger
        self.made = 0  # orders made so far: fresh users and request ids

    async def refunded_orders(self, n: int) -> list[str]:
        """n paid orders cancelled by the store: n refunds, stored in the ledger."""
        await self.redis.hset(RoomKeys.of(ROOM).room, "payment", "required")
        orders = []
        for _ in range(n):
            self.made += 1
            i = self.made
            out = await self.inventory.buy(ROOM, f"u{i}", "r-1", "lychee-500g", 2)
            await self.book.pay(out.answer.o, f"t-{i}", 2 * 1990, 1)
            await self.book.move(out.answer.o, State.CANCELLED, By.STAFF, "staff")
            orders.append(out.answer.o)
        persister = Persister(self.redis, self.store, refunds=self.ledger)
        await persister.drain()
        return orders


@pytest.fixture
async def parts(redis: Redis, scripts: Scripts, tmp_path: Path) -> AsyncIterator[Parts]:
    db = await open_database(sqlite_url(tmp_path / "shop.db"))
    rooms = Rooms(redis, scripts, db)
    await rooms.init_schema()
    store = OrderStore(db)
    await store.init_schema()
    ledger = RefundLedger(db)
    await ledger.init_schema()
    book = OrderBook(scripts, redis, QrSigner("s"))
    inventory = Inventory(redis, scripts, idempotency_ttl_s=3600, qr=book.qr)
    await seed_room(rooms, inventory)
    try:
        yield Parts(redis, inventory, book, store, ledger)
    finally:
        await inventory.aclose()
        await db.close()


async def test_a_refund_is_created_once_however_often_its_entry_is_stored(parts: Parts) -> None:
    [order_id] = await parts.refunded_orders(1)
    # the same outbox entries again (a redelivery): still one row
    entries = await parts.redis.xrange(RoomKeys.of(ROOM).outbox)
    assert entries == []  # stored and deleted
    refund = (await parts.ledger.recent(room_id=ROOM))[0]
    await parts.ledger.record(
        [(order_id, "cancelled", ROOM, refund.user_id, refund.amount, refund.txn_id, 1)] * 3
    )
    rows = await parts.ledger.recent(room_id=ROOM)
    assert [(r.order_id, r.reason, r.amount, r.state) for r in rows] == [
        (order_id, "cancelled", 2 * 1990, "pending")
    ]
    # a second cancel of the same order is refused: no second refund either
    with pytest.raises(Exception, match="cannot move"):
        await parts.book.move(order_id, State.CANCELLED, By.STAFF, "staff")


async def test_failures_are_retried_with_backoff_under_the_same_key(parts: Parts) -> None:
    [order_id] = await parts.refunded_orders(1)
    provider = Provider(failures=2)
    refunder = Refunder(parts.ledger, provider, parts.book, backoff_ms=50)
    assert await refunder.run_once() == 1  # fails: pending, next try in 50 ms
    assert await refunder.run_once() == 0  # not due yet
    [row] = await parts.ledger.recent(room_id=ROOM)
    assert (row.state, row.attempts) == ("pending", 1) and "TimeoutError" in row.last_error
    for _ in range(100):
        await asyncio.sleep(0.05)
        await refunder.run_once()
        [row] = await parts.ledger.recent(room_id=ROOM)
        if row.state != "pending":
            break
    assert (row.state, row.attempts) == ("done", 3)
    assert provider.calls == {f"{order_id}|cancelled": 3}
    assert provider.paid == {f"{order_id}|cancelled": 2 * 1990}
    found = await parts.book.get(order_id)
    assert found is not None and found[0].refund is not None
    assert (found[0].refund.state, found[0].refund.amount) == ("done", 2 * 1990)


async def test_two_processes_attempt_each_refund_once(parts: Parts) -> None:
    orders = await parts.refunded_orders(20)
    provider = Provider()
    a = Refunder(parts.ledger, provider, parts.book)
    b = Refunder(parts.ledger, provider, parts.book)
    b.owner = "another-process"
    while any(r.state == "pending" for r in await parts.ledger.recent(room_id=ROOM)):
        await asyncio.gather(a.run_once(), b.run_once())
    assert provider.calls == {f"{o}|cancelled": 1 for o in orders}


async def test_a_final_failure_is_shown_and_kept(parts: Parts) -> None:
    [order_id] = await parts.refunded_orders(1)
    await Refunder(parts.ledger, Provider(answer="failed"), parts.book).run_once()
    [row] = await parts.ledger.recent(room_id=ROOM)
    assert row.state == "failed"
    found = await parts.book.get(order_id)
    assert found is not None and found[0].refund is not None
    assert found[0].refund.state == "failed"
    # and after max_attempts transient failures
    [other] = await parts.refunded_orders(1)
    stubborn = Refunder(
        parts.ledger, Provider(failures=99), parts.book, max_attempts=2, backoff_ms=1
    )
    for _ in range(50):
        await stubborn.run_once()
        await asyncio.sleep(0.01)
    states = {r.order_id: r.state for r in await parts.ledger.recent(room_id=ROOM)}
    assert states[other] == "failed"
