"""The purchase script on the real engine: checks, idempotency, the ledger invariant."""

from __future__ import annotations

import asyncio
import json

from redis.asyncio import Redis

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.offers import Offers
from liveshop.commerce.rooms import Rooms
from liveshop.core import protocol as p
from liveshop.core.keys import RoomKeys
from liveshop.engine.scripts import Scripts
from tests.conftest import ROOM


async def test_accepts_decrements_and_writes_the_outbox(
    domain: tuple[Rooms, Inventory], redis: Redis
) -> None:
    _, inv = domain
    out = await inv.buy(ROOM, "u1", "r-1", "lychee-500g", 3)
    assert out.accepted and not out.repeat
    assert out.answer.u == 1990 and out.answer.q == 3 and len(out.answer.p) == 6
    assert (await inv.ledger(ROOM))["lychee-500g"] == (197, 0, 3, 200)
    entries = await redis.xrange(RoomKeys.of(ROOM).outbox)
    assert entries[0][1][b"kind"] == b"live"  # going live: its live.started webhook
    entries = entries[1:]
    assert len(entries) == 1
    fields = json.loads(entries[0][1][b"o"])  # the order at version 1, as JSON
    assert fields["order_id"] == out.answer.o and fields["qty"] == "3"
    assert fields["user_id"] == "u1" and fields["state"] == "accepted"
    assert fields["version"] == "1" and entries[0][1][b"sold"] == b"3"


async def test_rejections_name_their_reason_and_change_nothing(
    domain: tuple[Rooms, Inventory], redis: Redis
) -> None:
    rooms, inv = domain
    before = await inv.ledger(ROOM)
    assert (await inv.buy(ROOM, "u1", "a", "nope", 1)).answer.r == "unknown_sku"
    assert (await inv.buy(ROOM, "u1", "b", "lychee-500g", 201)).answer.r == "sold_out"
    assert (
        await inv.buy(ROOM, "u1", "c", "lychee-500g", 1, "of_missing")
    ).answer.r == "offer_ended"
    await rooms.end_live(ROOM)
    assert (await inv.buy(ROOM, "u1", "d", "lychee-500g", 1)).answer.r == "not_live"
    assert await inv.ledger(ROOM) == before
    entries = await redis.xrange(RoomKeys.of(ROOM).outbox)
    assert [f[b"kind"] for _, f in entries] == [b"live", b"live"]  # started, ended: no order


async def test_same_request_five_times_at_once_decrements_once(
    domain: tuple[Rooms, Inventory],
) -> None:
    _, inv = domain
    outs = await asyncio.gather(*(inv.buy(ROOM, "u1", "same", "lychee-500g", 2) for _ in range(5)))
    assert len({o.answer for o in outs}) == 1  # five identical answers
    assert sum(not o.repeat for o in outs) == 1
    assert outs[0].accepted
    assert (await inv.ledger(ROOM))["lychee-500g"] == (198, 0, 2, 200)
    # A repeat with other content still gets the first answer.
    again = await inv.buy(ROOM, "u1", "same", "mango-2pc", 9)
    assert again.repeat and again.answer == outs[0].answer


async def test_request_ids_are_per_user(domain: tuple[Rooms, Inventory]) -> None:
    _, inv = domain
    a = await inv.buy(ROOM, "a:b", "c", "lychee-500g", 1)
    b = await inv.buy(ROOM, "a", "b:c", "lychee-500g", 1)
    assert a.accepted and b.accepted and a.answer.o != b.answer.o


async def test_stock_never_oversold_under_concurrency(domain: tuple[Rooms, Inventory]) -> None:
    _, inv = domain
    await inv.put_product(ROOM, "durian", name="榴莲", price=8800, stock=7)
    outs = await asyncio.gather(
        *(inv.buy(ROOM, f"u{i}", "r", "durian", 1 + i % 2) for i in range(60))
    )
    sold = sum(o.answer.q for o in outs if o.accepted)
    assert sold <= 7 and sold >= 6  # the last unit may be unsellable to qty-2 buyers only
    left, _held, units, stocked = (await inv.ledger(ROOM))["durian"]
    assert left + units == stocked == 7 and units == sold


async def test_restock_corrects_but_never_below_zero(domain: tuple[Rooms, Inventory]) -> None:
    from liveshop.commerce.inventory import RestockRefused

    _, inv = domain
    assert await inv.restock(ROOM, "mango-2pc", -20) == 100
    try:
        await inv.restock(ROOM, "mango-2pc", -101)
        raise AssertionError("expected a refusal")
    except RestockRefused as exc:
        assert exc.reason == "negative" and exc.left == 100
    assert (await inv.ledger(ROOM))["mango-2pc"] == (100, 0, 0, 100)


async def test_offer_price_units_and_per_user_limit(
    domain: tuple[Rooms, Inventory], redis: Redis, scripts: Scripts
) -> None:
    _, inv = domain
    offers = Offers(redis, scripts)
    offer_id = await offers.start(
        ROOM, p.OfferStart(sku="lychee-500g", price=990, qty=3, duration_s=60, per_user_limit=2)
    )
    first = await inv.buy(ROOM, "u1", "1", "lychee-500g", 2, offer_id)
    assert first.accepted and first.answer.u == 990
    assert (await inv.buy(ROOM, "u1", "2", "lychee-500g", 1, offer_id)).answer.r == "limit_exceeded"
    assert (await inv.buy(ROOM, "u2", "3", "lychee-500g", 2, offer_id)).answer.r == "sold_out"
    assert (await inv.buy(ROOM, "u2", "4", "lychee-500g", 1, offer_id)).accepted
    assert (await inv.buy(ROOM, "u3", "5", "lychee-500g", 1, offer_id)).answer.r == "sold_out"
    status = await redis.hget(RoomKeys.of(ROOM).offer(offer_id), "status")
    assert status == b"sold_out"
    # the regular price is still on sale
    regular = await inv.buy(ROOM, "u3", "6", "lychee-500g", 1)
    assert regular.accepted and regular.answer.u == 1990


async def test_purchase_after_ends_at_is_refused_by_the_scripts_own_clock(
    domain: tuple[Rooms, Inventory], redis: Redis, scripts: Scripts
) -> None:
    """No timer runs here (no server, no sweeper): only the script's clock check."""
    _, inv = domain
    offers = Offers(redis, scripts)
    offer_id = await offers.start(
        ROOM, p.OfferStart(sku="mango-2pc", price=500, qty=10, duration_s=60, per_user_limit=1)
    )
    key = RoomKeys.of(ROOM).offer(offer_id)
    ends_at = int(await redis.hget(key, "ends_at"))
    await redis.hset(key, "ends_at", ends_at - 61_000)  # the window closed a second ago
    late = await inv.buy(ROOM, "u1", "late", "mango-2pc", 1, offer_id)
    assert late.answer.r == "offer_ended"
    assert await redis.hget(key, "status") == b"ended"
    assert (await inv.ledger(ROOM))["mango-2pc"] == (120, 0, 0, 120)


async def test_offer_start_validation(
    domain: tuple[Rooms, Inventory], redis: Redis, scripts: Scripts
) -> None:
    from liveshop.core.errors import Rejected

    rooms, _ = domain
    offers = Offers(redis, scripts)
    req = p.OfferStart(sku="lychee-500g", price=990, qty=201, duration_s=60, per_user_limit=1)
    for bad, words in (
        (req, "only 200 units"),
        (p.OfferStart(sku="x", price=1, qty=1, duration_s=60, per_user_limit=1), "unknown sku"),
    ):
        try:
            await offers.start(ROOM, bad)
            raise AssertionError("expected Rejected")
        except Rejected as exc:
            assert words in exc.message
    ok = p.OfferStart(sku="lychee-500g", price=990, qty=10, duration_s=60, per_user_limit=1)
    first = await offers.start(ROOM, ok)
    try:
        await offers.start(ROOM, ok)
        raise AssertionError("expected Rejected")
    except Rejected as exc:
        assert first in exc.message and "already live" in exc.message
    await rooms.end_live(ROOM)
    assert await redis.hget(RoomKeys.of(ROOM).offer(first), "status") == b"ended"


async def test_both_engine_paths_survive_a_flushed_script_cache(
    domain: tuple[Rooms, Inventory], redis: Redis, scripts: Scripts
) -> None:
    """Purchases over the pipelined link and over redis-py's pipeline (the TLS path) give
    the same answers, and an engine that lost its scripts (restart, SCRIPT FLUSH) is
    reloaded once without a purchase running twice."""
    _, linked = domain
    plain = Inventory(redis, scripts, idempotency_ttl_s=3600, direct_link=False)
    try:
        for n, inv in enumerate((linked, plain)):
            await redis.script_flush()
            first, again = await asyncio.gather(
                inv.buy(ROOM, f"u{n}", "r-1", "lychee-500g", 2),
                inv.buy(ROOM, f"u{n}", "r-1", "lychee-500g", 2),
            )
            assert first.accepted and again.accepted and first.answer.o == again.answer.o
            repeat = await inv.reject_sold_out(ROOM, f"u{n}", "r-1", "lychee-500g", 2)
            assert repeat.repeat and repeat.answer == first.answer  # the first answer wins
            fresh = await inv.reject_sold_out(ROOM, f"u{n}", "r-2", "lychee-500g", 2)
            assert not fresh.repeat and fresh.answer.r == "sold_out"
            retry = await inv.buy(ROOM, f"u{n}", "r-2", "lychee-500g", 2)  # recorded
            assert retry.repeat and retry.answer == fresh.answer
        assert (await linked.ledger(ROOM))["lychee-500g"] == (196, 0, 4, 200)
    finally:
        await plain.aclose()
