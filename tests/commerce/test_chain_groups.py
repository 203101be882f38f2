"""HQ's cross-store deals on the real engine (one Redis) and on the test Cluster: joins
from every listed room count together, every room's stream shows the same progress and
never goes back, the totals are the joins' sum, each member's order is in the room where
they joined (picked up there), a join whose order was never made (the process died
between the two steps) gets it from the relay, the deadline fails a short deal once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from liveshop.commerce.chain_groups import ChainGroupIn, ChainGroups, _keys, chain_events
from liveshop.commerce.inventory import Inventory
from liveshop.commerce.order_book import OrderBook, QrSigner
from liveshop.commerce.order_states import By, State
from liveshop.commerce.rooms import Rooms
from liveshop.core import protocol as p
from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import connect_cluster, is_cluster
from liveshop.engine.database import open_database, sqlite_url
from liveshop.engine.scripts import Scripts
from tests.cluster import LocalCluster
from tests.conftest import seed_room

SKU = "mango-2pc"


class Chain:
    def __init__(
        self,
        redis: Any,
        inventory: Inventory,
        book: OrderBook,
        chain: ChainGroups,
        rooms: list[str],
    ) -> None:
        self.redis, self.inventory, self.book, self.chain, self.rooms = (
            redis,
            inventory,
            book,
            chain,
            rooms,
        )

    async def start(self, **kw: Any) -> p.GroupState:
        body = {
            "rooms": self.rooms,
            "sku": SKU,
            "price": 990,
            "threshold": 100,
            "duration_s": 600,
            "stock": 500,
            "per_user_limit": 1,
            **kw,
        }
        return await self.chain.start(ChainGroupIn(**body))

    async def deal(self, gid: str) -> p.GroupState:
        found = await self.chain.get(gid)
        assert found is not None
        return found

    async def state(self, order_id: str) -> str:
        found = await self.book.get(order_id)
        assert found is not None
        return found[0].state

    async def join(self, gid: str, room: str, user: str) -> str:
        out = await self.chain.join(room, user, p.GroupJoin(request_id="j", group_id=gid, qty=1))
        return out.answer.o if out.accepted else out.answer.r

    async def progress(self, room: str, gid: str) -> list[int]:
        entries = await self.redis.xrange(RoomKeys.of(room).history)
        return [
            json.loads(f[b"m"])["value"] for _, f in entries if f[b"k"] == f"group:{gid}".encode()
        ]


async def make_chain(redis: Any, tmp_path: Path, rooms: list[str]) -> AsyncIterator[Chain]:
    scripts = Scripts(redis, sharded=is_cluster(redis))
    await scripts.load_all()
    db = await open_database(sqlite_url(tmp_path / "rooms.db"))
    room_store = Rooms(redis, scripts, db)
    await room_store.init_schema()
    book = OrderBook(scripts, redis, QrSigner("c"))
    inventory = Inventory(redis, scripts, idempotency_ttl_s=3600, qr=book.qr)
    for room in rooms:
        await seed_room(room_store, inventory, room)
    chain = ChainGroups(redis, scripts, book, idempotency_ttl_s=3600, qr=book.qr)
    try:
        yield Chain(redis, inventory, book, chain, rooms)
    finally:
        await inventory.aclose()
        await db.close()


@pytest.fixture
async def chain(redis: Any, tmp_path: Path) -> AsyncIterator[Chain]:
    async for c in make_chain(redis, tmp_path, [f"s{n:03d}" for n in range(50)]):
        yield c


async def a_deal_across_rooms(c: Chain) -> None:
    deal = await c.start(threshold=100, stock=500)
    joined: dict[str, str] = {}  # order id -> room

    async def one(n: int) -> None:
        room = c.rooms[n % len(c.rooms)]
        order_id = await c.join(deal.group_id, room, f"u{n}")
        assert order_id.startswith("o_"), order_id
        joined[order_id] = room
        if n % 10 == 0:
            await c.chain.relay_once()  # progress goes out while joins come in

    await asyncio.gather(*(one(n) for n in range(150)))
    for _ in range(3):
        await c.chain.relay_once()
        await asyncio.sleep(0.5)  # the announcement claim lasts 450 ms
    final = await c.chain.get(deal.group_id)
    assert final is not None and (final.status, final.value, final.left) == ("succeeded", 150, 350)
    for room in c.rooms:
        seen = await c.progress(room, deal.group_id)
        assert seen == sorted(seen) and seen[-1] == 150, (room, seen)  # monotone, same total
    for order_id, room in joined.items():
        assert order_id.endswith("." + room)  # picked up at the store where they joined
        found = await c.book.get(order_id)
        assert found is not None and found[0].state == "accepted"
        assert found[0].group_id == deal.group_id
    for room in c.rooms:  # the deal's own stock: no room's shelf moved
        assert (await c.inventory.ledger(room))[SKU] == (120, 0, 0, 120)


async def test_a_deal_across_fifty_rooms_on_one_redis(chain: Chain) -> None:
    await a_deal_across_rooms(chain)


@pytest.mark.slow
async def test_a_deal_across_rooms_on_every_shard_of_the_cluster(
    redis_cluster: LocalCluster, tmp_path: Path
) -> None:
    redis_cluster.flush()
    redis = connect_cluster(redis_cluster.nodes)
    rooms = [f"c{n:03d}" for n in range(50)]
    assert len({redis_cluster.shard_of(RoomKeys.of(r).outbox) for r in rooms}) == 3
    try:
        async for c in make_chain(redis, tmp_path, rooms):
            await a_deal_across_rooms(c)
    finally:
        await redis.aclose()


async def test_a_join_whose_order_was_never_made_gets_it_from_the_relay(chain: Chain) -> None:
    deal = await chain.start(threshold=2)
    group, members, listed = _keys(deal.group_id)
    order_id = "o_crashedbetween00.s007"
    # step 1 only, as if the joining process died before making the order
    await chain.chain._scripts.chain_join(
        keys=[
            group,
            members,
            listed,
            f"ls:{{{deal.group_id}}}:join:{order_id}",
            f"ls:{{{deal.group_id}}}:counted",
        ],
        args=["s007", "u-crash", 1, order_id, 3600, ""],
    )
    assert await chain.book.get(order_id) is None
    await chain.chain.relay_once()
    found = await chain.book.get(order_id)
    assert found is not None and found[0].state == "pending_group" and found[1] == "u-crash"
    assert await chain.join(deal.group_id, "s010", "u2") != ""  # the second member
    await chain.chain.relay_once()
    found = await chain.book.get(order_id)
    assert found is not None and found[0].state == "accepted"
    await chain.chain.relay_once()  # again: nothing doubles
    assert (await chain.redis.llen(listed)) == 2


async def test_a_short_deal_fails_at_its_deadline_once(chain: Chain) -> None:
    deal = await chain.start(threshold=5)
    orders = [await chain.join(deal.group_id, chain.rooms[n], f"u{n}") for n in range(4)]
    assert await chain.join(deal.group_id, "s999", "u9") == "group_closed"  # not listed
    assert await chain.join(deal.group_id, chain.rooms[0], "u0") == orders[0]  # a repeat
    group, _, _ = _keys(deal.group_id)
    await chain.redis.hset(group, "ends_at", str(time.time_ns() // 1_000_000 - 1))
    await asyncio.gather(chain.chain.relay_once(), chain.chain.relay_once())
    await chain.chain.relay_once()
    final = await chain.chain.get(deal.group_id)
    assert final is not None and final.status == "failed"
    for order_id in orders:
        found = await chain.book.get(order_id)
        assert found is not None
        assert (found[0].state, found[0].reason) == ("cancelled", "group_failed")
    assert await chain.join(deal.group_id, chain.rooms[5], "u5") == "group_closed"


async def test_in_pay_first_rooms_members_count_once_paid(tmp_path: Path, redis: Any) -> None:
    """A deal over two rooms that take payment first and two that do not: a pay-first
    member takes units at the join and counts once paid (the relay tells the deal); an
    unpaid member who cancels gives the units back; the payment that reaches the
    threshold makes the deal succeed, and nobody is refunded."""
    async for c in make_chain(redis, tmp_path, ["s001", "s002", "s003", "s004"]):
        for room in ("s003", "s004"):
            await c.redis.hset(RoomKeys.of(room).room, mapping={"payment": "required"})
        deal = await c.start(threshold=4, stock=10)
        _, members, _ = _keys(deal.group_id)
        a = await c.join(deal.group_id, "s001", "ua")
        b = await c.join(deal.group_id, "s003", "ub")
        found = await c.book.get(b)
        assert found is not None and found[0].state == "awaiting_payment"
        assert found[0].pay_by is not None
        gone = await c.join(deal.group_id, "s004", "ugone")
        await c.chain.relay_once()
        assert (await c.deal(deal.group_id)).value == 1
        await c.book.pay(b, "t-b", 990, 1)
        await c.chain.relay_once()
        assert (await c.deal(deal.group_id)).value == 2
        await c.book.move(gone, State.CANCELLED, By.BUYER, "ugone", buyer="ugone")
        await c.chain.relay_once()
        after = await c.chain.get(deal.group_id)
        assert after is not None and after.left == 10 - 2  # ugone's unit is back
        assert await c.redis.hget(members, "ugone") == b"0"  # and may join again
        d = await c.join(deal.group_id, "s004", "ud")
        await c.join(deal.group_id, "s002", "uc")
        assert (await c.deal(deal.group_id)).value == 3
        await c.book.pay(d, "t-d", 990, 1)
        await c.book.pay(d, "t-d", 990, 1)  # the notification again: applied once
        await c.chain.relay_once()
        await c.chain.relay_once()
        final = await c.chain.get(deal.group_id)
        assert final is not None and (final.status, final.value) == ("succeeded", 4)
        assert [await c.state(o) for o in (a, b, d)] == ["accepted", "paid", "paid"]
        for room in ("s003", "s004"):
            assert await c.redis.hlen(RoomKeys.of(room).refunds) == 0
            assert await c.redis.llen(chain_events(room)) == 0  # every event acknowledged


async def test_a_pay_first_member_of_a_failed_deal_is_refunded_once(
    tmp_path: Path, redis: Any
) -> None:
    """Paid before the deadline: refunded when the deal fails. Paid after it (still in
    its pay_by) with no relay having closed the deal yet: the count closes it, failed,
    and the payment is refunded. Relays racing change nothing twice."""
    async for c in make_chain(redis, tmp_path, ["s001", "s002"]):
        await c.redis.hset(RoomKeys.of("s002").room, mapping={"payment": "required"})
        deal = await c.start(threshold=3, stock=10)
        group, _, _ = _keys(deal.group_id)
        early = await c.join(deal.group_id, "s002", "u1")
        late = await c.join(deal.group_id, "s002", "u2")
        free = await c.join(deal.group_id, "s001", "u3")
        await c.book.pay(early, "t-1", 990, 1)
        await c.chain.relay_once()
        assert (await c.deal(deal.group_id)).value == 2
        await c.redis.hset(group, "ends_at", str(time.time_ns() // 1_000_000 - 1))
        await c.book.pay(late, "t-2", 990, 1)  # before any relay saw the deadline
        await asyncio.gather(*(c.chain.relay_once() for _ in range(3)))
        await c.chain.relay_once()
        final = await c.chain.get(deal.group_id)
        assert final is not None and (final.status, final.value) == ("failed", 2)
        for order_id in (early, late, free):
            found = await c.book.get(order_id)
            assert found is not None
            assert (found[0].state, found[0].reason) == ("cancelled", "group_failed")
        refunds = await c.redis.hgetall(RoomKeys.of("s002").refunds)
        assert sorted(refunds) == sorted(f"{o}|cancelled".encode() for o in (early, late))
        assert await c.redis.hlen(RoomKeys.of("s001").refunds) == 0  # u3 never paid
