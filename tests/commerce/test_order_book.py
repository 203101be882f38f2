"""Orders after the tap in the real engine: holds and their expiry, payments once per
txn, pickup verification, cancel racing ready, delivery callbacks, the stock invariant.

The clock is the engine's: where a test needs "15 minutes later" it moves the order's
own time (verified_at, pay_by) back in the order hash, as time passing would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from liveshop.commerce.delivery import CALLBACK_STATUSES
from liveshop.commerce.inventory import Inventory, RestockRefused
from liveshop.commerce.order_book import OrderBook, QrSigner
from liveshop.commerce.order_states import By, State
from liveshop.commerce.rooms import Rooms
from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, Rejected
from liveshop.core.keys import RoomKeys
from liveshop.engine.database import open_database, sqlite_url
from liveshop.engine.scripts import Scripts
from tests.conftest import ROOM, seed_room

S = State
SKU = "lychee-500g"
PRICE = 1990


class Shop:
    def __init__(self, redis: Redis, rooms: Rooms, inventory: Inventory, book: OrderBook) -> None:
        self.redis, self.rooms, self.inventory, self.book = redis, rooms, inventory, book
        self.keys = RoomKeys.of(ROOM)
        self._n = 0

    async def buy(
        self, user: str = "u1", qty: int = 1, delivery: p.DeliveryIn | None = None
    ) -> str:
        self._n += 1
        out = await self.inventory.buy(ROOM, user, f"r-{self._n}", SKU, qty, None, delivery)
        assert out.accepted, out.answer
        return out.answer.o

    async def state(self, order_id: str) -> str:
        found = await self.book.get(order_id)
        assert found is not None
        return found[0].state

    async def units(self) -> tuple[int, int, int, int]:
        return (await self.inventory.ledger(ROOM))[SKU]

    async def set_order_time(self, order_id: str, field: str, ms: int) -> None:
        key = self.keys.prefix + "order:" + order_id
        order = json.loads(await self.redis.get(key) or b"{}")
        await self.redis.set(key, json.dumps({**order, field: str(ms)}))

    async def pay(self, order_id: str, txn: str, amount: int | None = None) -> bytes:
        found = await self.book.get(order_id)
        assert found is not None
        total = found[0].qty * found[0].unit_price if amount is None else amount
        return (await self.book.pay(order_id, txn, total, now_ms())).body


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
async def shop(redis: Redis, scripts: Scripts, tmp_path: Path) -> AsyncIterator[Shop]:
    db = await open_database(sqlite_url(tmp_path / "shop.db"))
    rooms = Rooms(redis, scripts, db)
    await rooms.init_schema()
    book = OrderBook(scripts, redis, QrSigner("test-secret"))
    inventory = Inventory(redis, scripts, idempotency_ttl_s=3600, qr=book.qr)
    await seed_room(rooms, inventory)
    try:
        yield Shop(redis, rooms, inventory, book)
    finally:
        await inventory.aclose()
        await db.close()


async def require_payment(shop: Shop, hold_s: int = 900) -> None:
    # PUT /api/rooms takes 60-1800 s; tests write the room hash to hold for less.
    await shop.redis.hset(shop.keys.room, mapping={"payment": "required", "hold_s": str(hold_s)})


def invariant(units: tuple[int, int, int, int]) -> None:
    left, held, sold, stocked = units
    assert left + held + sold == stocked, units
    assert min(left, held, sold) >= 0, units


# ---- holds and payments -----------------------------------------------------------


async def test_a_hold_moves_units_left_to_held_and_payment_to_sold(shop: Shop) -> None:
    await require_payment(shop)
    order_id = await shop.buy(qty=2)
    assert await shop.units() == (198, 2, 0, 200)
    found = await shop.book.get(order_id)
    assert found is not None and found[0].state == "awaiting_payment"
    assert found[0].pay_by is not None and found[0].pay_by > now_ms() + 890_000
    body = await shop.pay(order_id, "t-1")
    assert b'"status":"paid"' in body
    assert await shop.units() == (198, 0, 2, 200)
    assert await shop.state(order_id) == "paid"
    # the same txn again: the same body, nothing changes; another txn: refunded once
    assert await shop.pay(order_id, "t-1") == body
    assert b'"status":"refunded"' in await shop.pay(order_id, "t-2")
    assert await shop.redis.hgetall(shop.keys.refunds) == {
        f"{order_id}|unneeded_payment:t-2".encode(): b"pending"
    }
    assert await shop.units() == (198, 0, 2, 200)


async def test_a_wrong_amount_records_nothing(shop: Shop) -> None:
    await require_payment(shop)
    order_id = await shop.buy()
    with pytest.raises(Rejected) as refused:
        await shop.pay(order_id, "t-1", amount=1)
    assert refused.value.code is ErrorCode.AMOUNT_MISMATCH
    assert await shop.state(order_id) == "awaiting_payment"
    assert b'"status":"paid"' in await shop.pay(order_id, "t-1")  # the txn was not taken


async def test_at_most_three_unpaid_orders_per_user(shop: Shop) -> None:
    await require_payment(shop)
    for _ in range(3):
        await shop.buy("u1")
    out = await shop.inventory.buy(ROOM, "u1", "r-4th", SKU, 1)
    assert out.answer.r == "too_many_unpaid"
    await shop.buy("u2")  # another user is not limited by u1
    order_id = await shop.buy("u3")
    await shop.pay(order_id, "t-u3")
    assert await shop.units() == (195, 4, 1, 200)


async def test_a_thousand_holds_expiring_in_the_same_second_return_exactly_their_units(
    shop: Shop,
) -> None:
    await shop.inventory.put_product(ROOM, SKU, name="荔枝", price=PRICE, stock=3000)
    await require_payment(shop, hold_s=1)
    orders = await asyncio.gather(*(shop.buy(f"u{i}", qty=1 + i % 3) for i in range(1000)))
    held = sum(1 + i % 3 for i in range(1000))
    assert await shop.units() == (3000 - held, held, 0, 3000)
    await asyncio.sleep(1.05)
    started = time.perf_counter()
    moved = await shop.book.sweep([ROOM])
    swept_s = time.perf_counter() - started
    assert moved == 1000
    assert await shop.units() == (3000, 0, 0, 3000)
    states = {await shop.state(o) for o in orders}
    assert states == {"expired"}
    assert await shop.book.sweep([ROOM]) == 0  # a second sweeper finds nothing
    print(f"swept 1,000 due holds in {swept_s * 1000:.0f} ms")


async def test_payments_racing_the_expiry_end_each_order_in_exactly_one_outcome(
    shop: Shop,
) -> None:
    """1,000 payments sent within ±5 ms of their order's pay_by while sweepers run:
    each order ends paid (in time, or re-reserved late) or expired with one refund."""
    await shop.inventory.put_product(ROOM, SKU, name="荔枝", price=PRICE, stock=1000)
    await require_payment(shop, hold_s=1)
    users = [f"u{i}" for i in range(1000)]
    orders = await asyncio.gather(*(shop.buy(u) for u in users))
    # Late payers compete with later buyers for the units that expiry returns.
    pay_by = {}
    for order_id in orders:
        found = await shop.book.get(order_id)
        assert found is not None and found[0].pay_by is not None
        pay_by[order_id] = found[0].pay_by
    stop = asyncio.Event()

    async def sweeping() -> None:
        while not stop.is_set():
            await shop.book.sweep([ROOM])
            await asyncio.sleep(0.001)

    async def buying_back() -> None:  # the returned units get sold again meanwhile
        n = 0
        while not stop.is_set():
            n += 1
            await shop.inventory.buy(ROOM, f"late-buyer-{n % 3}", f"lb-{n}", SKU, 1)
            await asyncio.sleep(0.002)

    rng = random.Random(7)
    provider = asyncio.Semaphore(32)  # a provider posts over a bounded set of connections

    async def paying(order_id: str) -> bytes:
        at = pay_by[order_id] + rng.uniform(-5, 5)
        await asyncio.sleep(max(0.0, at / 1000 - time.time()))
        async with provider:
            return await shop.pay(order_id, f"t-{order_id}")

    sweepers = [asyncio.create_task(sweeping()) for _ in range(3)]
    buyer = asyncio.create_task(buying_back())
    bodies = await asyncio.gather(*(paying(o) for o in orders))
    stop.set()
    await asyncio.gather(*sweepers, buyer)
    await shop.book.sweep([ROOM])
    refunds = await shop.redis.hgetall(shop.keys.refunds)
    outcomes = {"paid": 0, "expired+refund": 0}
    for order_id, body in zip(orders, bodies, strict=True):
        state = await shop.state(order_id)
        refunded = f"{order_id}|late_payment".encode() in refunds
        if state == "paid":
            assert not refunded and b'"status":"paid"' in body
            outcomes["paid"] += 1
        else:
            assert state == "expired" and refunded and b'"status":"refunded"' in body
            outcomes["expired+refund"] += 1
        # a replay of the notification changes nothing
        assert await shop.pay(order_id, f"t-{order_id}") == body
    assert len(refunds) == outcomes["expired+refund"]
    invariant(await shop.units())
    print(outcomes)


# ---- pickup at the counter -------------------------------------------------------------


async def ready_order(shop: Shop, user: str = "u1") -> tuple[str, str]:
    order_id = await shop.buy(user)
    await shop.book.move(order_id, S.READY, By.STAFF, "staff-1")
    found = await shop.book.get(order_id)
    assert found is not None and found[0].fulfilment.pickup_code is not None
    return order_id, found[0].fulfilment.pickup_code


async def test_two_staff_verifying_one_code_at_once_one_wins(shop: Shop) -> None:
    _order_id, code = await ready_order(shop)
    a, b = await asyncio.gather(
        shop.book.verify(ROOM, "staff-a", code=code), shop.book.verify(ROOM, "staff-b", code=code)
    )
    assert sorted([a.status, b.status]) == ["already_verified", "verified"]
    loser = a if a.status == "already_verified" else b
    winner = "staff-a" if a.status == "verified" else "staff-b"
    assert loser.verified_by == winner and loser.verified_at > 0
    entries = await shop.redis.xrange(shop.keys.outbox)
    orders = [json.loads(f[b"o"]) for _, f in entries if b"o" in f]
    picked = [o for o in orders if o["state"] == "picked_up"]
    assert len(picked) == 1  # one event in the log


async def test_a_qr_verifies_and_a_forged_or_foreign_one_is_not_found(shop: Shop) -> None:
    order_id, _ = await ready_order(shop)
    forged = order_id + "~" + "0" * 24
    assert (await shop.book.verify(ROOM, "s1", qr=forged)).status == "not_found"
    other_store = shop.book.qr.sign("o_abcdef.s999")
    assert (await shop.book.verify(ROOM, "s1", qr=other_store)).status == "not_found"
    result = await shop.book.verify(ROOM, "s1", qr=shop.book.qr.sign(order_id))
    assert result.status == "verified" and result.order is not None
    assert result.order.state == "picked_up" and result.order.verified_by == "s1"


async def test_five_misses_lock_the_sixth_and_other_staff_are_not_locked(shop: Shop) -> None:
    _, code = await ready_order(shop)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = [(await shop.book.verify(ROOM, "s1", code=wrong)).status for _ in range(6)]
    assert answers == ["not_found"] * 5 + ["locked"]
    assert (await shop.book.verify(ROOM, "s1", code=code)).status == "locked"  # even right
    assert (await shop.book.verify(ROOM, "s2", code=code)).status == "verified"


async def test_not_ready_and_undo_within_the_window_only(shop: Shop) -> None:
    order_id = await shop.buy()
    found = await shop.book.get(order_id)
    assert found is not None and found[0].fulfilment.pickup_code
    not_ready = await shop.book.verify(ROOM, "s1", code=found[0].fulfilment.pickup_code)
    assert (not_ready.status, not_ready.state) == ("not_ready", "accepted")
    order_id, code = await ready_order(shop, "u2")
    assert (await shop.book.verify(ROOM, "s1", code=code)).status == "verified"
    await shop.set_order_time(order_id, "verified_at", now_ms() - 14 * 60_000)
    undone = await shop.book.move(order_id, S.READY, By.UNDO_VERIFY, "s1")
    assert undone.state == "ready" and undone.verified_at is None
    assert (await shop.book.verify(ROOM, "s1", code=code)).status == "verified"
    await shop.set_order_time(order_id, "verified_at", now_ms() - 16 * 60_000)
    with pytest.raises(Rejected) as late:
        await shop.book.move(order_id, S.READY, By.UNDO_VERIFY, "s1")
    assert late.value.code is ErrorCode.UNDO_EXPIRED
    assert await shop.state(order_id) == "picked_up"


async def test_uncollected_after_pickup_by_returns_units(shop: Shop) -> None:
    order_id, code = await ready_order(shop)
    assert await shop.units() == (199, 0, 1, 200)
    await shop.set_order_time(order_id, "pickup_by", now_ms() - 1)
    await shop.redis.zadd(shop.keys.due, {f"pickup:{order_id}": now_ms() - 1})
    assert await shop.book.sweep([ROOM]) == 1
    assert await shop.state(order_id) == "uncollected"
    assert await shop.units() == (200, 0, 0, 200)
    assert (await shop.book.verify(ROOM, "s1", code=code)).status == "not_found"


async def test_codes_are_unique_among_open_orders(shop: Shop) -> None:
    orders = await asyncio.gather(*(shop.buy(f"u{i}") for i in range(150)))
    codes = await shop.redis.hgetall(shop.keys.codes)
    assert len(codes) == 150 and set(codes.values()) == {o.encode() for o in orders}


# ---- cancel, delivery -------------------------------------------------------------


async def test_cancel_racing_ready_one_wins_and_units_return_once(shop: Shop) -> None:
    for i in range(50):
        order_id = await shop.buy(f"u{i}", qty=2)
        before = await shop.units()
        results = await asyncio.gather(
            shop.book.move(order_id, S.CANCELLED, By.BUYER, f"u{i}", buyer=f"u{i}"),
            shop.book.move(order_id, S.READY, By.STAFF, "staff"),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, p.Order)]
        lost = [r for r in results if isinstance(r, Rejected)]
        assert len(won) == 1 and len(lost) == 1, results
        assert lost[0].code is ErrorCode.ILLEGAL_TRANSITION
        after = await shop.units()
        if won[0].state == "cancelled":
            assert after[0] == before[0] + 2 and after[2] == before[2] - 2
        else:
            assert after == before
        invariant(after)


async def test_a_buyer_cannot_cancel_another_buyers_order(shop: Shop) -> None:
    order_id = await shop.buy("u1")
    with pytest.raises(Rejected) as refused:
        await shop.book.move(order_id, S.CANCELLED, By.BUYER, "u2", buyer="u2")
    assert refused.value.code is ErrorCode.NOT_FOUND
    assert await shop.state(order_id) == "accepted"


async def test_a_paid_cancel_is_refunded_once(shop: Shop) -> None:
    await require_payment(shop)
    order_id = await shop.buy(qty=3)
    await shop.pay(order_id, "t-1")
    order = await shop.book.move(order_id, S.CANCELLED, By.STAFF, "staff", reason="缺货")
    assert order.refund == p.Refund(amount=3 * PRICE, state="pending")
    assert await shop.units() == (200, 0, 0, 200)
    assert await shop.redis.hgetall(shop.keys.refunds) == {
        f"{order_id}|cancelled".encode(): b"pending"
    }


async def test_shuffled_tripled_delivery_callbacks_reach_the_same_final_state(
    shop: Shop,
) -> None:
    delivery = p.DeliveryIn(address="花园路 8 号", lat=22.54, lng=114.05)
    rng = random.Random(3)
    finals = set()
    for i in range(20):
        order_id = await shop.buy(f"d{i}", delivery=delivery)
        await shop.book.move(order_id, S.OUT_FOR_DELIVERY, By.STAFF, "staff")
        calls = ["assigned", "picked", "delivered"] * 3
        rng.shuffle(calls)
        for status in calls:
            rank, target = CALLBACK_STATUSES[status]
            await shop.book.delivery_status(order_id, status, rank, target, "provider")
        found = await shop.book.get(order_id)
        assert found is not None
        finals.add((found[0].state, found[0].delivery_status))
    assert finals == {("delivered", "delivered")}


async def test_ready_is_for_pickup_orders_and_out_for_delivery_for_deliveries(shop: Shop) -> None:
    pickup = await shop.buy("u1")
    with pytest.raises(Rejected, match="pickup order does not go out_for_delivery"):
        await shop.book.move(pickup, S.OUT_FOR_DELIVERY, By.STAFF, "staff")
    with pytest.raises(Rejected) as refused:
        await shop.book.move(pickup, S.DELIVERED, By.STAFF, "staff")
    assert refused.value.code is ErrorCode.ILLEGAL_TRANSITION
    assert await shop.state(pickup) == "accepted"


# ---- the invariant, over random interleavings ------------------------------------------

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["buy", "pay", "expire", "cancel", "restock", "late_pay", "ready"]),
        st.integers(0, 1000),
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=ACTIONS)
async def test_stocked_is_left_plus_held_plus_sold_after_every_step(
    shop: Shop, actions: list[tuple[str, int]]
) -> None:
    """Property: whatever the interleaving of buy, pay, expiry, cancel, restock, late
    payment and ready, stocked = left + held + sold and nothing goes below zero."""
    await shop.redis.flushdb()
    await seed_room(shop.rooms, shop.inventory, stock={SKU: 6})
    await require_payment(shop)
    orders: list[str] = []
    for txn, (action, n) in enumerate(actions):
        if action == "buy":
            out = await shop.inventory.buy(ROOM, f"u{n % 5}", f"r-{txn}", SKU, 1 + n % 3)
            if out.accepted:
                orders.append(out.answer.o)
        elif action == "restock":
            with contextlib.suppress(RestockRefused):  # below zero: refused, no change
                await shop.inventory.restock(ROOM, SKU, n % 7 - 3)
        elif orders:
            order_id = orders[n % len(orders)]
            if action in ("pay", "late_pay"):
                if action == "late_pay":
                    await shop.set_order_time(order_id, "pay_by", 0)
                with contextlib.suppress(Rejected):
                    await shop.pay(order_id, f"t-{txn}")
            elif action == "expire":
                await shop.set_order_time(order_id, "pay_by", 0)
                await shop.redis.zadd(shop.keys.due, {f"pay:{order_id}": 0})
                await shop.book.sweep([ROOM])
            elif action in ("cancel", "ready"):
                target = S.CANCELLED if action == "cancel" else S.READY
                with contextlib.suppress(Rejected):
                    await shop.book.move(order_id, target, By.STAFF, "staff")
        invariant(await shop.units())


async def test_a_repeated_buy_gets_its_first_answer_after_the_order_moved(shop: Shop) -> None:
    """The order's key is the request's idempotency record: a retry after a payment, or
    one the room answers itself as sold out, still gets the first answer, and buys once."""
    await require_payment(shop)
    first = await shop.inventory.buy(ROOM, "u1", "r-same", SKU, 2)
    assert first.accepted and first.answer.t == "awaiting_payment"
    await shop.pay(first.answer.o, "t-1")
    again = await shop.inventory.buy(ROOM, "u1", "r-same", SKU, 2)
    assert again.repeat and again.answer == first.answer
    sold_out_path = await shop.inventory.reject_sold_out(ROOM, "u1", "r-same", SKU, 2)
    assert sold_out_path.repeat and sold_out_path.answer == first.answer
    assert await shop.units() == (198, 0, 2, 200)
    other = await shop.inventory.buy(ROOM, "u2", "r-same", SKU, 1)  # another user's request
    assert other.accepted and not other.repeat and other.answer.o != first.answer.o
