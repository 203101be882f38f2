"""HQ's price bands on the real engine and a real SQLite file: the most specific scope
wins (store > region > chain), the band is copied into each room's slot, and every
price path — a product's price, an offer's, a group's, a campaign pack's product, offer
and group at go-live, an HQ deal across rooms —
accepts a price exactly when it is inside the band resolved for that room (a seeded
random property test over band edits and prices, edges included). Racing edits leave
the latest band in every room."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from liveshop.commerce.catalog import Catalog
from liveshop.commerce.chain_groups import ChainGroupIn, ChainGroups
from liveshop.commerce.groups import Groups
from liveshop.commerce.inventory import Inventory
from liveshop.commerce.offers import Offers
from liveshop.commerce.order_book import OrderBook, QrSigner
from liveshop.commerce.packs import PackGroup, PackIn, PackOffer, PackProduct, Packs
from liveshop.commerce.price_bands import Band, BandIn, PriceBands, resolve
from liveshop.commerce.rooms import Rooms
from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, OutOfBand, Rejected
from liveshop.core.keys import RoomKeys
from liveshop.engine.database import open_database, sqlite_url
from liveshop.engine.scripts import Scripts
from tests.conftest import seed_room

SKU = "lychee-500g"
REGIONS = {"s001": "north", "s002": "north", "s003": "south"}


@dataclass
class Chain:
    redis: Redis
    rooms: Rooms
    inventory: Inventory
    offers: Offers
    groups: Groups
    deals: ChainGroups
    bands: PriceBands
    packs: Packs


@pytest.fixture
async def chain(redis: Redis, scripts: Scripts, tmp_path: Path) -> AsyncIterator[Chain]:
    db = await open_database(sqlite_url(tmp_path / "hq.db"))
    rooms = Rooms(redis, scripts, db)
    await rooms.init_schema()
    book = OrderBook(scripts, redis, QrSigner("t"))
    inventory = Inventory(redis, scripts, idempotency_ttl_s=3600, qr=book.qr)
    for room, region in REGIONS.items():
        await seed_room(rooms, inventory, room)
        await redis.hset(RoomKeys.of(room).room, "region", region)
    bands = PriceBands(redis, scripts, db, rooms)
    await bands.init_schema()
    deals = ChainGroups(redis, scripts, book, idempotency_ttl_s=3600, qr=book.qr)
    catalog = Catalog(db)
    await catalog.init_schema()
    packs = Packs(redis, scripts, db, rooms, catalog, bands)
    await packs.init_schema()
    try:
        yield Chain(
            redis,
            rooms,
            inventory,
            Offers(redis, scripts),
            Groups(scripts, idempotency_ttl_s=60),
            deals,
            bands,
            packs,
        )
    finally:
        await inventory.aclose()
        await db.close()


def test_the_most_specific_scope_wins() -> None:
    bands = [
        Band(SKU, "chain", 100, 1000),
        Band(SKU, "region:north", 200, 800),
        Band(SKU, "store:s001", 300, 500),
        Band(SKU, "store:s009", 1, 2),  # another store's
        Band(SKU, "region:west", 1, 2),  # another region's
    ]
    assert resolve(bands, "s001", "north") == bands[2]
    assert resolve(bands, "s002", "north") == bands[1]
    assert resolve(bands, "s003", "south") == bands[0]
    assert resolve(bands, "s004", "") == bands[0]  # a room with no region: the chain's
    assert resolve(bands[3:], "s001", "north") is None


async def test_store_region_chain_resolve_for_three_stores(chain: Chain) -> None:
    await chain.bands.put(SKU, BandIn("chain", 100, 1000))
    await chain.bands.put(SKU, BandIn("region:north", 200, 800))
    await chain.bands.put(SKU, BandIn("store:s001", 300, 500))
    copies = {room: await chain.bands.for_room(room) for room in REGIONS}
    assert copies == {
        "s001": {SKU: (300, 500)},
        "s002": {SKU: (200, 800)},
        "s003": {SKU: (100, 1000)},
    }
    # the store's band goes: s001 falls back to its region's
    assert await chain.bands.delete(SKU, "store:s001")
    assert await chain.bands.for_room("s001") == {SKU: (200, 800)}
    # a room moves region: its copy follows at the next sync of the room
    await chain.redis.hset(RoomKeys.of("s002").room, "region", "south")
    await chain.bands.sync(rooms=["s002"])
    assert await chain.bands.for_room("s002") == {SKU: (100, 1000)}


async def _accepted(c: Chain, path: str, room: str, price: int) -> bool:
    """Try one price path; True if the price was taken. Whatever it opened is closed
    again so that the next try starts from the same room."""
    try:
        if path == "product":
            await c.inventory.put_product(room, SKU, name="荔枝", price=price, stock=200)
        elif path == "offer":
            offer_id = await c.offers.start(
                room,
                p.OfferStart(sku=SKU, price=price, qty=1, duration_s=60, per_user_limit=1),
            )
            await c.offers.stop(room, offer_id)
        elif path == "group":
            group = await c.groups.start(
                room,
                p.GroupStart(
                    sku=SKU, price=price, threshold=2, duration_s=600, cap=1, per_user_limit=1
                ),
            )
            await c.groups.cancel(room, group.group_id)
        elif path in ("pack_product", "pack_offer", "pack_group"):
            pack = await c.packs.put(
                f"p{price}",
                PackIn(
                    title="周末水果节",
                    products=[PackProduct(SKU, price=price)] if path == "pack_product" else [],
                    offers=[PackOffer(SKU, price, qty=1, per_user_limit=1, duration_s=60, at_s=600)]
                    if path == "pack_offer"
                    else [],
                    groups=[
                        PackGroup(
                            SKU,
                            price,
                            threshold=2,
                            duration_s=600,
                            cap=1,
                            per_user_limit=1,
                            at_s=600,
                        )
                    ]
                    if path == "pack_group"
                    else [],
                ),
            )
            await c.rooms.end_live(room)
            try:
                await c.packs.go_live(room, pack.pack_id, None)
            finally:  # back to a plain session, whether the pack's opened or not
                await c.rooms.end_live(room)
                await c.rooms.go_live(room, None)
        else:
            deal = await c.deals.start(
                ChainGroupIn(
                    rooms=list(REGIONS),
                    sku=SKU,
                    price=price,
                    threshold=2,
                    duration_s=600,
                    stock=5,
                    per_user_limit=1,
                )
            )
            await c.deals.cancel(deal.group_id)
    except OutOfBand as exc:
        assert exc.code is ErrorCode.PRICE_OUT_OF_BAND
        assert set(exc.details) == {"floor", "ceiling"}
        return False
    return True


async def test_no_price_outside_the_resolved_band_is_accepted_on_any_path(
    chain: Chain,
) -> None:
    rng = random.Random(20261202)
    scopes = ["chain", "region:north", "region:south", *(f"store:{r}" for r in REGIONS)]
    tried = refused = 0
    seen: set[tuple[str, bool]] = set()
    for _ in range(30):
        # an HQ edit: set or remove one scope's band
        scope = rng.choice(scopes)
        if rng.random() < 0.25:
            await chain.bands.delete(SKU, scope)
        else:
            floor = rng.randrange(100, 3000)
            await chain.bands.put(SKU, BandIn(scope, floor, floor + rng.randrange(0, 2000)))
        current = await chain.bands.bands(SKU)
        expected = {room: resolve(current, room, region) for room, region in REGIONS.items()}
        for room, band in expected.items():
            edges = [band.floor - 1, band.floor, band.ceiling, band.ceiling + 1] if band else []
            for price in [*edges, rng.randrange(1, 6000)]:
                if price <= 0:
                    continue
                path = rng.choice(
                    ["product", "offer", "group", "pack_product", "pack_offer", "pack_group"]
                )
                taken = await _accepted(chain, path, room, price)
                assert taken == (band is None or band.admits(price)), (path, room, price, band)
                tried += 1
                refused += not taken
                seen.add((path, taken))
        price = rng.randrange(1, 6000)  # an HQ deal: every listed room's band must hold
        fits_all = all(b is None or b.admits(price) for b in expected.values())
        assert await _accepted(chain, "deal", "", price) == fits_all, (price, expected)
    assert tried > 300 and 0 < refused < tried
    assert len(seen) == 12  # every path both took and refused a price
    for room in REGIONS:  # nothing refused changed the shelf
        left, held, sold, stocked = (await chain.inventory.ledger(room))[SKU]
        assert (left, held, sold) == (stocked, 0, 0)


async def test_racing_band_edits_leave_the_latest_band_in_every_room(chain: Chain) -> None:
    await asyncio.gather(
        *(chain.bands.put(SKU, BandIn("chain", 100 + n, 2000 + n)) for n in range(20))
    )
    (stored,) = await chain.bands.bands(SKU)
    for room in REGIONS:
        assert await chain.bands.for_room(room) == {SKU: (stored.floor, stored.ceiling)}


async def test_a_band_with_floor_above_ceiling_is_refused(chain: Chain) -> None:
    with pytest.raises(Rejected, match="floor must not be above ceiling"):
        await chain.bands.put(SKU, BandIn("chain", 500, 400))
    assert await chain.bands.bands(SKU) == []
