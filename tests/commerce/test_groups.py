"""Group buying in one room, on the real engine: a group takes its units from the shelf,
joins never overfill it, the threshold makes it succeed at once, the deadline fails it
below threshold exactly once, members' orders follow, units come back, the room stream
hears the progress at most twice a second. Where a test needs "the deadline has come",
it moves the group's own `ends_at` (and its due item) back, as time passing would."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from liveshop.commerce.groups import Groups
from liveshop.commerce.inventory import Inventory
from liveshop.commerce.order_book import OrderBook, QrSigner
from liveshop.commerce.order_states import By, State
from liveshop.commerce.orders import OrderStore, Persister
from liveshop.commerce.rooms import Rooms
from liveshop.core import protocol as p
from liveshop.core.errors import Rejected
from liveshop.core.keys import RoomKeys
from liveshop.engine.database import open_database, sqlite_url
from liveshop.engine.scripts import Scripts
from tests.conftest import ROOM, seed_room

SKU = "lychee-500g"


class Shop:
    def __init__(
        self, redis: Redis, rooms: Rooms, inventory: Inventory, book: OrderBook, groups: Groups
    ) -> None:
        self.redis, self.rooms, self.inventory, self.book, self.groups = (
            redis,
            rooms,
            inventory,
            book,
            groups,
        )
        self.keys = RoomKeys.of(ROOM)

    async def start(self, **fields: object) -> p.GroupState:
        msg = {
            "sku": SKU,
            "price": 1490,
            "threshold": 3,
            "duration_s": 600,
            "cap": 10,
            "per_user_limit": 2,
            **fields,
        }
        return await self.groups.start(ROOM, p.GroupStart(**msg))  # type: ignore[arg-type]

    async def join(self, group_id: str, user: str, qty: int = 1, request_id: str = "j-1") -> str:
        out = await self.groups.join(
            ROOM, user, p.GroupJoin(request_id=request_id, group_id=group_id, qty=qty)
        )
        return out.answer.o if out.accepted else out.answer.r

    async def group(self, group_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.group(group_id))
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def state(self, order_id: str) -> str:
        found = await self.book.get(order_id)
        assert found is not None
        return found[0].state

    async def units(self) -> tuple[int, int, int, int]:
        return (await self.inventory.ledger(ROOM))[SKU]

    async def deadline_now(self, group_id: str) -> None:
        past = time.time_ns() // 1_000_000 - 1
        await self.redis.hset(self.keys.group(group_id), "ends_at", str(past))
        await self.redis.zadd(self.keys.due, {f"group:{group_id}": past})

    async def sweep_all(self) -> None:
        await self.book.sweep([ROOM])


@pytest.fixture
async def shop(redis: Redis, scripts: Scripts, tmp_path: Path) -> AsyncIterator[Shop]:
    db = await open_database(sqlite_url(tmp_path / "shop.db"))
    rooms = Rooms(redis, scripts, db)
    await rooms.init_schema()
    book = OrderBook(scripts, redis, QrSigner("t"))
    inventory = Inventory(redis, scripts, idempotency_ttl_s=3600, qr=book.qr)
    # joins go out with the purchases, as the app wires them (factory.py)
    groups = Groups(scripts, idempotency_ttl_s=3600, qr=book.qr, batcher=inventory.batcher)
    await seed_room(rooms, inventory)
    try:
        yield Shop(redis, rooms, inventory, book, groups)
    finally:
        await inventory.aclose()
        await db.close()


def invariant(units: tuple[int, int, int, int]) -> None:
    left, held, sold, stocked = units
    assert left + held + sold == stocked and min(units) >= 0, units


async def test_a_group_takes_its_units_from_the_shelf_or_is_refused(shop: Shop) -> None:
    group = await shop.start(cap=50)
    assert (group.status, group.value, group.left) == ("open", 0, 50)
    assert await shop.units() == (150, 50, 0, 200)
    with pytest.raises(Rejected, match="only 150 units"):
        await shop.start(cap=151)
    assert await shop.units() == (150, 50, 0, 200)
    snap = await shop.rooms.snapshot(ROOM)
    assert snap.state.groups is not None and [g.group_id for g in snap.state.groups] == [
        group.group_id
    ]


async def test_ten_thousand_concurrent_joins_never_overfill_the_group(shop: Shop) -> None:
    group = await shop.start(cap=50, threshold=10, per_user_limit=1)
    sem = asyncio.Semaphore(200)

    async def one(n: int) -> str:
        async with sem:
            return await shop.join(group.group_id, f"u{n}")

    answers = await asyncio.gather(*(one(n) for n in range(10_000)))
    accepted = [a for a in answers if a.startswith("o_")]
    assert len(accepted) == 50
    assert {a for a in answers if not a.startswith("o_")} == {"group_full"}
    g = await shop.group(group.group_id)
    assert (g["status"], g["value"], g["left"]) == ("succeeded", "50", "0")
    await shop.sweep_all()
    assert {await shop.state(o) for o in accepted} == {"accepted"}
    assert await shop.units() == (150, 0, 50, 200)
    invariant(await shop.units())


async def test_the_last_join_before_the_deadline_succeeds_one_short_fails(shop: Shop) -> None:
    ok = await shop.start(threshold=3, cap=10)
    short = await shop.start(threshold=3, cap=10)
    ok_orders = [await shop.join(ok.group_id, f"u{n}", request_id="a") for n in range(3)]
    short_orders = [await shop.join(short.group_id, f"u{n}", request_id="b") for n in range(2)]
    assert (await shop.group(ok.group_id))["status"] == "succeeded"
    assert {await shop.state(o) for o in ok_orders} == {"accepted"}  # at once
    assert {await shop.state(o) for o in short_orders} == {"pending_group"}
    await shop.deadline_now(ok.group_id)
    await shop.deadline_now(short.group_id)
    await shop.sweep_all()
    assert (await shop.group(short.group_id))["status"] == "failed"
    assert (await shop.group(ok.group_id))["status"] == "succeeded"
    for order_id in short_orders:
        found = await shop.book.get(order_id)
        assert found is not None
        assert (found[0].state, found[0].reason) == ("cancelled", "group_failed")
    # ok sold 3, its 7 unjoined units and all of short's 10 are back on the shelf
    assert await shop.units() == (197, 0, 3, 200)
    assert await shop.join(short.group_id, "u9") == "group_closed"
    assert await shop.join(ok.group_id, "u9") == "group_closed"
    await shop.sweep_all()  # a second sweeper: nothing more happens
    assert await shop.units() == (197, 0, 3, 200)


async def test_joins_racing_the_deadline_are_counted_or_cancelled_never_both(
    shop: Shop,
) -> None:
    """Joins sent within ±5 ms of the group's end while sweepers run: each order ends
    accepted in a succeeded group or cancelled (group_failed), never both, units exact."""
    await shop.inventory.put_product(ROOM, SKU, name="荔枝", price=1990, stock=2000)
    outcomes = []
    for attempt in range(10):
        group = await shop.start(threshold=30, cap=60, per_user_limit=1)
        now = time.time_ns() // 1_000_000
        ends = now + 300
        await shop.redis.hset(shop.keys.group(group.group_id), "ends_at", str(ends))
        await shop.redis.zadd(shop.keys.due, {f"group:{group.group_id}": ends})
        stop = asyncio.Event()

        async def sweeping(stop: asyncio.Event = stop) -> None:
            while not stop.is_set():
                await shop.sweep_all()
                await asyncio.sleep(0.001)

        async def joining(n: int, at: float, gid: str = group.group_id, tag: int = attempt) -> str:
            await asyncio.sleep(max(0.0, at - time.time()))
            return await shop.join(gid, f"a{tag}-{n}")

        sweepers = [asyncio.create_task(sweeping()) for _ in range(2)]
        # 29 joins well before the end, the 30th within ±5 ms of it (success hangs on
        # that race), then 5 just after it
        early = [joining(n, now / 1000) for n in range(29)]
        racing = [joining(100, (ends + attempt - 4.5) / 1000)]
        late = [joining(200 + n, (ends + 5 + n) / 1000) for n in range(5)]
        answers = await asyncio.gather(*early, *racing, *late)
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*sweepers)
        await shop.sweep_all()
        g = await shop.group(group.group_id)
        orders = [a for a in answers if a.startswith("o_")]
        states = [await shop.state(o) for o in orders]
        if g["status"] == "succeeded":
            assert set(states) == {"accepted"}, states
        else:
            assert g["status"] == "failed" and set(states) == {"cancelled"}, states
        assert {a for a in answers if not a.startswith("o_")} <= {"group_closed"}
        invariant(await shop.units())
        outcomes.append(g["status"])
    print(outcomes)


async def test_cancel_fails_an_open_group_and_a_big_group_settles_in_batches(
    shop: Shop,
) -> None:
    await shop.inventory.put_product(ROOM, SKU, name="荔枝", price=1990, stock=2000)
    small = await shop.start(threshold=5, cap=10)
    members = [await shop.join(small.group_id, f"u{n}") for n in range(3)]
    await shop.groups.cancel(ROOM, small.group_id)
    assert (await shop.group(small.group_id))["status"] == "cancelled"
    assert {await shop.state(o) for o in members} == {"cancelled"}
    with pytest.raises(Rejected, match="only an open one"):
        await shop.groups.cancel(ROOM, small.group_id)
    big = await shop.start(threshold=600, cap=600, per_user_limit=1)
    orders = await asyncio.gather(*(shop.join(big.group_id, f"b{n}") for n in range(600)))
    assert (await shop.group(big.group_id))["status"] == "succeeded"
    states = [await shop.state(o) for o in orders]
    assert states.count("accepted") >= 250  # the first batch at once
    await shop.sweep_all()
    assert {await shop.state(o) for o in orders} == {"accepted"}
    assert await shop.units() == (1400, 0, 600, 2000)


async def test_progress_goes_out_at_most_twice_a_second_and_the_latest_always(
    shop: Shop,
) -> None:
    group = await shop.start(threshold=100, cap=100, per_user_limit=1)
    before = int(await shop.redis.get(shop.keys.seq) or 0)
    for n in range(40):
        await shop.join(group.group_id, f"u{n}")
    await asyncio.sleep(0.6)
    await shop.sweep_all()
    entries = await shop.redis.xrange(shop.keys.history, min=f"{before + 1}-0")
    groups = [
        json.loads(f[b"m"]) for _, f in entries if f[b"k"] == f"group:{group.group_id}".encode()
    ]
    assert 1 <= len(groups) <= 3
    assert groups[-1]["value"] == 40
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(groups)]
    assert all(gap >= 500 for gap in gaps), gaps


async def test_group_orders_reach_the_database_with_their_outcome(
    shop: Shop, redis: Redis, tmp_path: Path
) -> None:
    db = await open_database(sqlite_url(tmp_path / "orders.db"))
    store = OrderStore(db)
    await store.init_schema()
    group = await shop.start(threshold=2, cap=4)
    orders = [await shop.join(group.group_id, f"u{n}") for n in range(2)]
    await Persister(redis, store).drain()
    rows = {o.order_id: o for o in await store.list(room_id=ROOM)}
    assert {rows[o].state for o in orders} == {"accepted"}
    assert {rows[o].group_id for o in orders} == {group.group_id}
    assert await store.units_sold(ROOM) == {SKU: 2}
    assert [e["to_state"] for e in await store.events(orders[0])] == ["pending_group", "accepted"]
    await db.close()


async def test_in_a_pay_first_room_members_count_once_paid_and_a_failure_refunds_once(
    shop: Shop,
) -> None:
    await shop.redis.hset(shop.keys.room, mapping={"payment": "required", "hold_s": "900"})
    group = await shop.start(threshold=3, cap=10)
    orders = [await shop.join(group.group_id, f"u{n}") for n in range(4)]
    assert {await shop.state(o) for o in orders} == {"awaiting_payment"}
    assert (await shop.group(group.group_id))["value"] == "0"  # nobody paid yet
    for n, order_id in enumerate(orders[:2]):
        await shop.book.pay(order_id, f"t-{n}", 1490, 1)
    g = await shop.group(group.group_id)
    assert (g["value"], g["status"]) == ("2", "open")
    # an unpaid member's hold ends: the units go back to the group's shelf
    await shop.book.move(orders[3], State.CANCELLED, By.BUYER, "u3", buyer="u3")
    assert (await shop.group(group.group_id))["left"] == "7"
    assert await shop.units() == (190, 8, 2, 200)
    # the deadline, one payment short: failed; the paid members are refunded once
    await shop.deadline_now(group.group_id)
    await shop.sweep_all()
    await shop.sweep_all()
    assert (await shop.group(group.group_id))["status"] == "failed"
    for order_id in orders[:2]:
        found = await shop.book.get(order_id)
        assert found is not None
        assert (found[0].state, found[0].reason) == ("cancelled", "group_failed")
        assert found[0].refund == p.Refund(amount=1490, state="pending")
    refunds = await shop.redis.hgetall(shop.keys.refunds)
    assert sorted(refunds) == sorted(f"{o}|cancelled".encode() for o in orders[:2])
    # the unpaid one left pays after the failure: refunded at once, nothing sold
    late = await shop.book.pay(orders[2], "t-late", 1490, 1)
    assert b'"status":"refunded"' in late.body
    assert await shop.state(orders[2]) == "cancelled"
    assert await shop.units() == (200, 0, 0, 200)


async def test_in_a_pay_first_room_payments_make_the_group_succeed(shop: Shop) -> None:
    await shop.redis.hset(shop.keys.room, mapping={"payment": "required", "hold_s": "900"})
    group = await shop.start(threshold=2, cap=10, metric="units", per_user_limit=5)
    a = await shop.join(group.group_id, "u1", qty=1)
    b = await shop.join(group.group_id, "u2", qty=2)
    await shop.book.pay(a, "t-a", 1490, 1)
    assert (await shop.group(group.group_id))["status"] == "open"
    await shop.book.pay(b, "t-b", 2 * 1490, 1)
    g = await shop.group(group.group_id)
    assert (g["status"], g["value"]) == ("succeeded", "3")
    assert {await shop.state(o) for o in (a, b)} == {"paid"}
    await shop.deadline_now(group.group_id)
    await shop.sweep_all()
    assert await shop.units() == (197, 0, 3, 200)  # the 7 unjoined units are back


async def test_a_payment_after_the_deadline_cannot_make_the_group_succeed(shop: Shop) -> None:
    """One payment short at the deadline, and the last member pays before any sweep ran:
    the group fails first (the payment closes it), the payment is refunded."""
    await shop.redis.hset(shop.keys.room, mapping={"payment": "required", "hold_s": "900"})
    group = await shop.start(threshold=2, cap=10)
    first, last = [await shop.join(group.group_id, f"u{n}") for n in range(2)]
    await shop.book.pay(first, "t-1", 1490, 1)
    await shop.deadline_now(group.group_id)
    paid = await shop.book.pay(last, "t-2", 1490, 1)
    assert b'"status":"refunded"' in paid.body
    g = await shop.group(group.group_id)
    assert (g["status"], g["value"]) == ("failed", "1")
    assert {await shop.state(o) for o in (first, last)} == {"cancelled"}
    refunds = await shop.redis.hgetall(shop.keys.refunds)
    assert sorted(refunds) == sorted(f"{o}|cancelled".encode() for o in (first, last))
    assert await shop.units() == (200, 0, 0, 200)


async def test_the_session_totals_count_group_joins_outcomes_and_sales(shop: Shop) -> None:
    """One group succeeds (its 3 members' units are the session's sales at that moment),
    one is cancelled by the broadcaster; end_live stores the figures with the session."""
    won = await shop.start(threshold=3, cap=10, per_user_limit=1)
    lost = await shop.start(threshold=5, cap=10, per_user_limit=1)
    for n in range(3):
        await shop.join(won.group_id, f"u{n}")
    await shop.join(lost.group_id, "u9")
    await shop.groups.cancel(ROOM, lost.group_id)
    totals = await shop.rooms.end_live(ROOM)
    assert totals is not None
    assert (totals.group_joins, totals.groups_succeeded, totals.groups_failed) == (4, 1, 1)
    assert (totals.orders, totals.units, totals.gmv, totals.buyers) == (3, 3, 3 * 1490, 3)
    stored = (await shop.rooms.sessions(ROOM))[0]
    assert {k: stored[k] for k in ("group_joins", "groups_succeeded", "groups_failed")} == {
        "group_joins": 4,
        "groups_succeeded": 1,
        "groups_failed": 1,
    }
    assert (stored["orders"], stored["units"], stored["gmv"]) == (3, 3, 3 * 1490)
