"""Price bands (价格带): HQ's floor and ceiling for a SKU, set for the whole chain, for a
region or for one store; the most specific scope wins (store > region > chain).

Owns the SQL table `price_bands` (the bands as HQ set them), the counter
`ls:bands:version` and every room's `ls:{room}:bands` hash: the band resolved for that
room, copied into the room's slot so that the scripts of every price path (a product's
price, an offer's, a group's, a pack's through those) refuse a price outside it with the
same Lua guard (`out_of_band` in _prelude.lua), atomically with the change it guards.
Copies are written by `bands_put.lua` only if their version is not older than the one
there, so two HQ edits racing each other never leave the older band in a room.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Annotated

import msgspec

from liveshop.commerce.rooms import Rooms
from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, OutOfBand, Rejected
from liveshop.core.keys import RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.connections import AnyRedis
from liveshop.engine.database import Database, Migration
from liveshop.engine.scripts import Call, Scripts, run_many

MIGRATIONS = [
    Migration(
        "price_bands",
        1,
        """
        CREATE TABLE IF NOT EXISTS price_bands (
            sku         TEXT NOT NULL,
            scope       TEXT NOT NULL,
            floor       BIGINT NOT NULL,
            ceiling     BIGINT NOT NULL,
            updated_at  BIGINT NOT NULL,
            PRIMARY KEY (sku, scope)
        )
        """,
    ),
]
BAND_COLUMNS = ("sku", "scope", "floor", "ceiling", "updated_at")
VERSION = "ls:bands:version"
SCOPE = r"^(chain|region:[A-Za-z0-9_-]{1,64}|store:[A-Za-z0-9_-]{1,64})$"
SCOPE_RE = re.compile(SCOPE)
Scope = Annotated[str, msgspec.Meta(pattern=SCOPE)]


class BandIn(msgspec.Struct, forbid_unknown_fields=True):
    """`PUT /api/bands/{sku}`."""

    scope: Scope
    floor: p.Price
    ceiling: p.Price


class Band(msgspec.Struct, frozen=True):
    sku: str
    scope: str
    floor: int
    ceiling: int
    updated_at: int = 0

    def admits(self, price: int) -> bool:
        return self.floor <= price <= self.ceiling


def _rank(scope: str, room_id: str, region: str) -> int:
    """How specific a scope is for this room: 3 its store, 2 its region, 1 the chain,
    0 another store's or region's."""
    if scope == f"store:{room_id}":
        return 3
    if region and scope == f"region:{region}":
        return 2
    return 1 if scope == "chain" else 0


def resolve(bands: Iterable[Band], room_id: str, region: str) -> Band | None:
    """The band that holds for one SKU in one room: the most specific that applies."""
    best: tuple[int, Band] | None = None
    for band in bands:
        rank = _rank(band.scope, room_id, region)
        if rank and (best is None or rank > best[0]):
            best = (rank, band)
    return best[1] if best else None


def check(band: Band | None, sku: str, price: int) -> None:
    """The guard for a price set outside one room's slot (an HQ deal across rooms)."""
    if band is not None and not band.admits(price):
        raise OutOfBand(sku, price, band.floor, band.ceiling)


def _copy(band: Band | None) -> str:
    return f"{band.floor}:{band.ceiling}" if band else ":"


def _parse_copy(raw: str) -> tuple[int, int] | None:
    floor, ceiling, _ = raw.split(":")
    return (int(floor), int(ceiling)) if floor else None


async def room_band(redis: AnyRedis, room_id: str, sku: str) -> Band | None:
    """The band a room's scripts enforce for a SKU now (its copy in the room's slot)."""
    raw = await redis.hget(RoomKeys.of(room_id).bands, sku)
    found = _parse_copy(as_text(raw)) if raw else None
    return Band(sku, "", found[0], found[1]) if found else None


class PriceBands:
    def __init__(self, redis: AnyRedis, scripts: Scripts, db: Database, rooms: Rooms) -> None:
        self._redis = redis
        self._scripts = scripts
        self._db = db
        self._rooms = rooms

    async def init_schema(self) -> None:
        await self._db.migrate(MIGRATIONS)

    async def put(self, sku: str, body: BandIn) -> Band:
        """Set one scope's band for a SKU (the others stay) and copy what it changes into
        every room. Rejected(bad_message) when floor > ceiling."""
        if body.floor > body.ceiling:
            raise Rejected(ErrorCode.BAD_MESSAGE, "floor must not be above ceiling")
        band = Band(sku, body.scope, body.floor, body.ceiling, int(time.time() * 1000))
        await self._db.execute(
            "INSERT INTO price_bands (sku, scope, floor, ceiling, updated_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sku, scope) DO UPDATE SET "
            "floor=excluded.floor, ceiling=excluded.ceiling, updated_at=excluded.updated_at",
            (band.sku, band.scope, band.floor, band.ceiling, band.updated_at),
        )
        await self.sync(skus=[sku])
        return band

    async def delete(self, sku: str, scope: str) -> bool:
        found = await self._db.fetch_write(
            "DELETE FROM price_bands WHERE sku = $1 AND scope = $2 RETURNING sku", (sku, scope)
        )
        await self.sync(skus=[sku])
        return bool(found)

    async def bands(self, sku: str | None = None) -> list[Band]:
        sql = f"SELECT {', '.join(BAND_COLUMNS)} FROM price_bands"
        rows = await (
            self._db.fetch(sql + " WHERE sku = $1 ORDER BY scope", (sku,))
            if sku is not None
            else self._db.fetch(sql + " ORDER BY sku, scope")
        )
        return [msgspec.convert(dict(zip(BAND_COLUMNS, r, strict=True)), Band) for r in rows]

    async def for_room(self, room_id: str) -> dict[str, tuple[int, int]]:
        """The bands the room's scripts enforce now: sku -> (floor, ceiling)."""
        raw = await self._redis.hgetall(RoomKeys.of(room_id).bands)
        out = {}
        for sku, value in raw.items():
            band = _parse_copy(as_text(value))
            if band is not None:
                out[as_text(sku)] = band
        return out

    async def sync(self, *, skus: list[str] | None = None, rooms: list[str] | None = None) -> int:
        """Resolve the bands of these SKUs (default: every SKU with a band) for these rooms
        (default: every room) and copy them into the rooms. Run after every band change,
        when a room is created or changes region, and at start. Returns the rooms written."""
        # The version is taken before the bands are read: a copy made from a read that
        # might miss a later edit carries an older version than that edit's own copy.
        version: int = await self._redis.incr(VERSION)
        bands = [b for b in await self.bands() if skus is None or b.sku in skus]
        names = sorted(set(skus if skus is not None else (b.sku for b in bands)))
        if not names:
            return 0
        room_ids = rooms if rooms is not None else await self._rooms.all_ids()
        found = await self._rooms.fields_of(room_ids, "region")
        regions = [found[room_id]["region"] for room_id in room_ids]
        by_sku: dict[str, list[Band]] = {}
        for band in bands:
            by_sku.setdefault(band.sku, []).append(band)
        calls: list[Call] = []
        for room_id, region in zip(room_ids, regions, strict=True):
            pairs: list[str] = []
            for sku in names:
                pairs += [sku, _copy(resolve(by_sku.get(sku, ()), room_id, region))]
            calls.append((self._scripts.bands_put, [RoomKeys.of(room_id).bands], [version, *pairs]))
        for start in range(0, len(calls), 500):
            await run_many(self._redis, calls[start : start + 500])
        return len(calls)
