"""HQ's campaign packs (主题包 / 营销策略包): products, offers and a script that a store
enables with one tap when it goes live.

Owns the SQL tables `pack_versions` (every PUT is a new, immutable version) and
`pack_applications` (which room went live with which version, for the results), and the
room keys `packs`, `queued`, `queued_due` (lua/packs_*.lua). Going live with a pack is
one script in the room's slot (products stocked and priced, offers queued, session
opened; every band checked before the first write); a version is applied at most once
per room. Queued offers start by a guarded script ("only if still queued and due") that
every process sweeps. A withdrawal marks the version in the database first, then in
every room it targets: a room that read the mark too early meets the room's own marker.
The rules of a preview are the pure `preview()`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from typing import Annotated, Literal

import msgspec

from liveshop.commerce.catalog import Catalog, CatalogItem
from liveshop.commerce.order_book import order_call
from liveshop.commerce.price_bands import PriceBands
from liveshop.commerce.rooms import ProductMeta, Rooms, new_session_id
from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, OutOfBand, Rejected
from liveshop.core.keys import RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.connections import AnyRedis
from liveshop.engine.database import Database, Migration
from liveshop.engine.scripts import Call, Scripts, run_many

MIGRATIONS = [
    Migration(
        "packs",
        1,
        """
        CREATE TABLE IF NOT EXISTS pack_versions (
            pack_id       TEXT NOT NULL,
            version       INTEGER NOT NULL,
            body          TEXT NOT NULL,
            created_at    BIGINT NOT NULL,
            withdrawn_at  BIGINT,
            PRIMARY KEY (pack_id, version)
        );
        CREATE TABLE IF NOT EXISTS pack_applications (
            pack_id     TEXT NOT NULL,
            version     INTEGER NOT NULL,
            room_id     TEXT NOT NULL,
            session_id  TEXT NOT NULL,
            applied_at  BIGINT NOT NULL,
            PRIMARY KEY (pack_id, version, room_id)
        )
        """,
    ),
]

PACK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
Line = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
RoomId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Region = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class PackProduct(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sku: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    stock: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None  # units added
    price: p.Price | None = None


class PackOffer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sku: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    price: p.Price
    qty: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    per_user_limit: Annotated[int, msgspec.Meta(ge=1, le=999)]
    duration_s: Annotated[int, msgspec.Meta(ge=10, le=3600)]
    at_s: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 0  # after going live


class PackGroup(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A group (拼团) the pack opens `at_s` after going live (group_start's fields)."""

    sku: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    price: p.Price
    threshold: Annotated[int, msgspec.Meta(ge=2, le=10_000)]
    duration_s: Annotated[int, msgspec.Meta(ge=600, le=259_200)]
    cap: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    per_user_limit: Annotated[int, msgspec.Meta(ge=1, le=999)]
    metric: Literal["buyers", "units"] = "buyers"
    at_s: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 0


class PackIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`PUT /api/packs/{pack_id}`: the body of a new version."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    title_en: Annotated[str, msgspec.Meta(max_length=100)] = ""
    products: Annotated[list[PackProduct], msgspec.Meta(max_length=200)] = []
    offers: Annotated[list[PackOffer], msgspec.Meta(max_length=100)] = []
    groups: Annotated[list[PackGroup], msgspec.Meta(max_length=50)] = []
    script: Annotated[list[Line], msgspec.Meta(max_length=200)] = []
    valid_from: int | None = None
    valid_to: int | None = None
    rooms: Annotated[list[RoomId], msgspec.Meta(max_length=10_000)] | None = None
    regions: Annotated[list[Region], msgspec.Meta(max_length=1_000)] | None = None


class Pack(msgspec.Struct, frozen=True):
    pack_id: str
    version: int
    created_at: int
    withdrawn_at: int | None
    body: PackIn


class Change(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: Literal["add_product", "price", "stock", "queue_offer", "queue_group"]
    sku: str
    before: int | None = None
    after: int | None = None
    at_s: int | None = None


class Conflict(msgspec.Struct, frozen=True, omit_defaults=True):
    """One reason the pack cannot be applied as written. `blocking`: going live with the
    pack is refused (a queued offer that cannot start is skipped when its time comes)."""

    code: str  # a protocol error code
    kind: Literal[
        "not_targeted",
        "not_valid_now",
        "withdrawn",
        "unknown_sku",
        "out_of_band",
        "short_stock",
        "overlapping_offers",
    ]
    message: str
    blocking: bool
    sku: str | None = None
    price: int | None = None
    floor: int | None = None
    ceiling: int | None = None
    stock: int | None = None


class Preview(msgspec.Struct, frozen=True):
    pack_id: str
    version: int
    room: str
    applied: bool  # this version was applied here already: going live changes no stock
    changes: list[Change]
    conflicts: list[Conflict]


class RoomView(msgspec.Struct, frozen=True):
    """What a preview needs of a room: its region, products (sku -> (price, stock)),
    the bands its scripts enforce (sku -> (floor, ceiling)), this version's marker."""

    region: str
    products: dict[str, tuple[int, int]]
    bands: dict[str, tuple[int, int]]
    marker: str | None


def targets(body: PackIn, room_id: str, region: str) -> bool:
    if body.rooms is not None and room_id not in body.rooms:
        return False
    return body.regions is None or region in body.regions


def preview(
    pack: Pack, room_id: str, room: RoomView, catalog: dict[str, CatalogItem], now: int
) -> Preview:
    """Every change applying `pack` to the room would make, and every conflict (pure)."""
    body = pack.body
    conflicts: list[Conflict] = []

    def conflict(code: ErrorCode, kind: str, message: str, **details: object) -> None:
        blocking = kind not in ("short_stock", "overlapping_offers")
        conflicts.append(
            msgspec.convert(
                {"code": code.value, "kind": kind, "message": message, "blocking": blocking}
                | details,
                Conflict,
            )
        )

    if pack.withdrawn_at is not None or room.marker == "withdrawn":
        conflict(ErrorCode.NOT_FOUND, "withdrawn", f"version {pack.version} was withdrawn")
    if not targets(body, room_id, room.region):
        conflict(ErrorCode.FORBIDDEN, "not_targeted", f"the pack is not for room {room_id!r}")
    if (body.valid_from is not None and now < body.valid_from) or (
        body.valid_to is not None and now > body.valid_to
    ):
        conflict(ErrorCode.NOT_READY, "not_valid_now", "the pack is not valid at this time")

    def check_band(sku: str, price: int) -> None:
        band = room.bands.get(sku)
        if band is not None and not band[0] <= price <= band[1]:
            conflict(
                ErrorCode.PRICE_OUT_OF_BAND,
                "out_of_band",
                f"price {price} of {sku!r} is outside HQ's band {band[0]}–{band[1]}",
                sku=sku,
                price=price,
                floor=band[0],
                ceiling=band[1],
            )

    changes: list[Change] = []
    after = dict(room.products)  # sku -> (price, stock) once the products are applied
    for item in body.products:
        known = room.products.get(item.sku)
        if known is None:
            listed = catalog.get(item.sku)
            if listed is None:
                conflict(
                    ErrorCode.NOT_FOUND,
                    "unknown_sku",
                    f"{item.sku!r} is neither in the room nor in the catalog",
                    sku=item.sku,
                )
                continue
            price = item.price if item.price is not None else listed.base_price
            check_band(item.sku, price)
            after[item.sku] = (price, item.stock or 0)
            changes.append(Change("add_product", item.sku, after=price))
            if item.stock:
                changes.append(Change("stock", item.sku, before=0, after=item.stock))
            continue
        price, stock = known
        if item.price is not None:
            check_band(item.sku, item.price)
            if item.price != price:
                changes.append(Change("price", item.sku, before=price, after=item.price))
            price = item.price
        if item.stock:
            changes.append(Change("stock", item.sku, before=stock, after=stock + item.stock))
        after[item.sku] = (price, stock + (item.stock or 0))
    windows: dict[str, list[tuple[int, int]]] = {}
    for offer in body.offers:
        check_band(offer.sku, offer.price)
        changes.append(Change("queue_offer", offer.sku, after=offer.price, at_s=offer.at_s))
        if offer.sku not in after:
            conflict(
                ErrorCode.NOT_FOUND,
                "unknown_sku",
                f"the offer's {offer.sku!r} is not a product of the room or the pack",
                sku=offer.sku,
            )
            continue
        stock = after[offer.sku][1]
        if offer.qty > stock:
            conflict(
                ErrorCode.BAD_MESSAGE,
                "short_stock",
                f"the offer at {offer.at_s}s asks for {offer.qty} of {offer.sku!r}, "
                f"{stock} would be in stock",
                sku=offer.sku,
                stock=stock,
            )
        start, end = offer.at_s, offer.at_s + offer.duration_s
        for s, e in windows.get(offer.sku, []):
            if start < e and s < end:
                conflict(
                    ErrorCode.BAD_MESSAGE,
                    "overlapping_offers",
                    f"two offers on {offer.sku!r} overlap ({s}–{e}s and {start}–{end}s): "
                    "the later one would not start",
                    sku=offer.sku,
                )
        windows.setdefault(offer.sku, []).append((start, end))
    for group in body.groups:
        check_band(group.sku, group.price)
        changes.append(Change("queue_group", group.sku, after=group.price, at_s=group.at_s))
        if group.sku not in after:
            conflict(
                ErrorCode.NOT_FOUND,
                "unknown_sku",
                f"the group's {group.sku!r} is not a product of the room or the pack",
                sku=group.sku,
            )
        elif group.cap > after[group.sku][1]:
            conflict(
                ErrorCode.BAD_MESSAGE,
                "short_stock",
                f"the group at {group.at_s}s takes {group.cap} of {group.sku!r}, "
                f"{after[group.sku][1]} would be in stock",
                sku=group.sku,
                stock=after[group.sku][1],
            )
    applied = room.marker is not None and room.marker.startswith("applied:")
    return Preview(
        pack.pack_id, pack.version, room_id, applied, [] if applied else changes, conflicts
    )


class QueuedOffer(msgspec.Struct, frozen=True, omit_defaults=True):
    """A pack's offer or group in the room's session (the console's schedule); `qty` of a
    group is its cap."""

    kind: Literal["offer", "group"]
    pack_id: str
    version: int
    sku: str
    price: int
    qty: int
    per_user_limit: int
    duration_ms: int
    at: int
    status: Literal["queued", "started", "skipped", "withdrawn"]
    offer_id: str | None = None
    reason: str | None = None
    settled_at: int | None = None
    group_id: str | None = None
    metric: str | None = None
    threshold: int | None = None


class QueuedRaw(msgspec.Struct, frozen=True):
    # The script keeps every field as a string (cjson would print large ints as floats).
    pack_id: str
    version: str
    session_id: str
    sku: str
    price: str
    qty: str
    per_user_limit: str
    duration_ms: str
    at: str
    status: Literal["queued", "started", "skipped", "withdrawn"]
    offer_id: str | None = None
    reason: str | None = None
    settled_at: str | None = None
    kind: Literal["offer", "group"] = "offer"
    group_id: str | None = None
    metric: str | None = None
    threshold: str | None = None


def _queued(raw: QueuedRaw) -> QueuedOffer:
    return QueuedOffer(
        raw.kind,
        raw.pack_id,
        int(raw.version),
        raw.sku,
        int(raw.price),
        int(raw.qty),
        int(raw.per_user_limit),
        int(raw.duration_ms),
        int(raw.at),
        raw.status,
        raw.offer_id,
        raw.reason,
        int(raw.settled_at) if raw.settled_at else None,
        raw.group_id,
        raw.metric,
        int(raw.threshold) if raw.threshold else None,
    )


class RoomPack(msgspec.Struct, frozen=True):
    """`GET /api/rooms/{room}/pack`: the pack of the room's session, for the console's
    teleprompter and schedule."""

    pack_id: str
    version: int
    title: str
    title_en: str
    script: list[str]
    offers: list[QueuedOffer]


def _now() -> int:
    return int(time.time() * 1000)


class Packs:
    def __init__(
        self,
        redis: AnyRedis,
        scripts: Scripts,
        db: Database,
        rooms: Rooms,
        catalog: Catalog,
        bands: PriceBands,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._db = db
        self._rooms = rooms
        self._catalog = catalog
        self._bands = bands

    async def init_schema(self) -> None:
        await self._db.migrate(MIGRATIONS)

    # -- versions --------------------------------------------------------------------

    async def put(self, pack_id: str, body: PackIn) -> Pack:
        """A new version (1 for a new pack); versions are never changed afterwards."""
        if (
            body.valid_from is not None
            and body.valid_to is not None
            and (body.valid_from > body.valid_to)
        ):
            raise Rejected(ErrorCode.BAD_MESSAGE, "valid_from must not be after valid_to")
        for group in body.groups:
            if group.metric == "units" and group.cap < group.threshold:
                raise Rejected(
                    ErrorCode.BAD_MESSAGE, "a group's cap must be at least its units threshold"
                )
        text = msgspec.json.encode(body).decode()
        for _ in range(20):
            rows = await self._db.fetch_write(
                "INSERT INTO pack_versions (pack_id, version, body, created_at) "
                "SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 "
                "FROM pack_versions WHERE pack_id = $1 "
                "ON CONFLICT (pack_id, version) DO NOTHING "
                "RETURNING pack_id, version, body, created_at, withdrawn_at",
                (pack_id, text, _now()),
            )
            if rows:
                return _pack(rows[0])
        raise RuntimeError(f"pack {pack_id!r}: no free version after 20 tries")

    async def get(self, pack_id: str, version: int | None = None) -> Pack | None:
        """A version, by default the latest."""
        sql = "SELECT pack_id, version, body, created_at, withdrawn_at FROM pack_versions "
        rows = await (
            self._db.fetch(sql + "WHERE pack_id = $1 ORDER BY version DESC LIMIT 1", (pack_id,))
            if version is None
            else self._db.fetch(sql + "WHERE pack_id = $1 AND version = $2", (pack_id, version))
        )
        return _pack(rows[0]) if rows else None

    async def versions(self, pack_id: str) -> list[Pack]:
        rows = await self._db.fetch(
            "SELECT pack_id, version, body, created_at, withdrawn_at FROM pack_versions "
            "WHERE pack_id = $1 ORDER BY version",
            (pack_id,),
        )
        return [_pack(r) for r in rows]

    async def latest(self) -> list[Pack]:
        rows = await self._db.fetch(
            "SELECT pack_id, version, body, created_at, withdrawn_at FROM pack_versions v "
            "WHERE version = (SELECT MAX(version) FROM pack_versions WHERE pack_id = v.pack_id) "
            "ORDER BY pack_id"
        )
        return [_pack(r) for r in rows]

    # -- a room ----------------------------------------------------------------------

    async def _view(self, room_id: str, pack: Pack) -> RoomView:
        keys = RoomKeys.of(room_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.room, "region")
            pipe.hgetall(keys.price)
            pipe.hgetall(keys.stock)
            pipe.hget(keys.packs, f"{pack.pack_id}:{pack.version}")
            region, prices, stock, marker = await pipe.execute()
        products = {
            as_text(sku): (int(price), int(stock.get(sku, 0))) for sku, price in prices.items()
        }
        return RoomView(
            region=as_text(region) if region else "",
            products=products,
            bands=await self._bands.for_room(room_id),
            marker=as_text(marker) if marker else None,
        )

    async def _catalog_of(self, skus: Iterable[str]) -> dict[str, CatalogItem]:
        found = {}
        for sku in set(skus):
            item = await self._catalog.get(sku)
            if item is not None:
                found[sku] = item
        return found

    async def preview(self, pack: Pack, room_id: str) -> Preview:
        return (await self._preview(pack, room_id))[0]

    async def _preview(
        self, pack: Pack, room_id: str
    ) -> tuple[Preview, RoomView, dict[str, CatalogItem]]:
        """The preview, with the room and the catalog items it was made from."""
        view = await self._view(room_id, pack)
        missing = [i.sku for i in pack.body.products if i.sku not in view.products]
        catalog = await self._catalog_of(missing)
        return preview(pack, room_id, view, catalog, _now()), view, catalog

    async def go_live(self, room_id: str, pack_id: str, title: str | None) -> tuple[bool, str]:
        """Go live with the pack's latest version: (opened_now, session_id). Refused with
        the first blocking conflict (nothing changes); already live: no change."""
        live = await self._redis.hmget(RoomKeys.of(room_id).room, ["live", "session_id"])
        if live[0] == b"1":  # a repeat of a go-live that worked: nothing to check or change
            return False, as_text(live[1] or b"")
        pack = await self.get(pack_id)
        if pack is None:
            raise Rejected(ErrorCode.NOT_FOUND, f"no pack {pack_id!r}")
        found, view, catalog = await self._preview(pack, room_id)
        # Applied here before: going live again only opens the session (the script skips
        # the products and offers), so only a withdrawal still stands in the way.
        blocking = [
            c
            for c in found.conflicts
            if c.blocking and (not found.applied or c.kind == "withdrawn")
        ]
        if blocking:
            first = blocking[0]
            if first.kind == "out_of_band":
                assert first.sku is not None
                assert first.price is not None
                assert first.floor is not None
                assert first.ceiling is not None
                raise OutOfBand(first.sku, first.price, first.floor, first.ceiling)
            raise Rejected(ErrorCode(first.code), first.message)
        body = pack.body
        keys = RoomKeys.of(room_id)
        title = title or body.title  # tonight's theme, unless the broadcaster named it
        product_args: list[object] = []
        for item in body.products:
            meta, price = "", item.price
            if item.sku not in view.products:  # new to the room: the catalog's name and image
                listed = catalog[item.sku]
                meta = msgspec.json.encode(
                    ProductMeta(name=listed.name, image=listed.image or None)
                ).decode()
                price = price if price is not None else listed.base_price
            product_args += [item.sku, meta, "" if price is None else price, item.stock or ""]
        offer_args: list[object] = []
        for offer in body.offers:
            offer_args += [
                offer.sku,
                offer.price,
                offer.qty,
                offer.per_user_limit,
                offer.duration_s * 1000,
                offer.at_s * 1000,
            ]
        group_args: list[object] = []
        for group in body.groups:
            group_args += [
                group.sku,
                group.price,
                group.metric,
                group.threshold,
                group.cap,
                group.per_user_limit,
                group.duration_s * 1000,
                group.at_s * 1000,
            ]
        reply = await self._scripts.packs_apply(
            keys=[
                keys.room,
                keys.products,
                keys.price,
                keys.stock,
                keys.stocked,
                keys.held,
                keys.seq,
                keys.history,
                keys.bands,
                keys.stats,
                keys.buyers,
                keys.audience,
                keys.packs,
                keys.queued,
                keys.queued_due,
                keys.minutes,
                keys.session_offers,
                keys.hints_log,
                keys.outbox,
                keys.reservations,
            ],
            args=[
                new_session_id(),
                title,
                keys.channel,
                pack.pack_id,
                pack.version,
                len(body.products),
                *product_args,
                len(body.offers),
                *offer_args,
                len(body.groups),
                *group_args,
            ],
        )
        status = as_text(reply[0])
        if status == "already":
            return False, as_text(reply[1])
        if status == "withdrawn":
            raise Rejected(ErrorCode.NOT_FOUND, f"version {pack.version} was withdrawn")
        if status == "unknown_sku":
            raise Rejected(ErrorCode.NOT_FOUND, f"unknown sku {as_text(reply[1])!r}")
        if status == "out_of_band":
            sku = as_text(reply[1])
            price = next(
                (i.price for i in body.products if i.sku == sku and i.price is not None),
                next(
                    (o.price for o in body.offers if o.sku == sku),
                    next((g.price for g in body.groups if g.sku == sku), 0),
                ),
            )
            raise OutOfBand(sku, price, int(reply[2]), int(reply[3]))
        _, sid, title_b, started_at, applied_now = reply
        session_id = as_text(sid)
        await self._rooms.session_opened(room_id, session_id, as_text(title_b), int(started_at))
        if int(applied_now):
            await self._db.execute(
                "INSERT INTO pack_applications (pack_id, version, room_id, session_id, "
                "applied_at) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (pack_id, version, room_id) DO NOTHING",
                (pack.pack_id, pack.version, room_id, session_id, int(started_at)),
            )
        return True, session_id

    async def of_room(self, room_id: str) -> RoomPack | None:
        """The pack of the room's current (or last) session, with its queued offers."""
        keys = RoomKeys.of(room_id)
        room = await self._redis.hmget(keys.room, ["pack_id", "pack_version", "session_id"])
        if not room[0]:
            return None
        pack = await self.get(as_text(room[0]), int(as_text(room[1] or b"0")))
        if pack is None:
            return None
        session_id = as_text(room[2] or b"")
        decoder = msgspec.json.Decoder(QueuedRaw)
        offers = [
            _queued(q)
            for q in (
                decoder.decode(raw) for raw in (await self._redis.hgetall(keys.queued)).values()
            )
            if q.session_id == session_id
        ]
        return RoomPack(
            pack.pack_id,
            pack.version,
            pack.body.title,
            pack.body.title_en,
            pack.body.script,
            sorted(offers, key=lambda q: (q.at, q.sku)),
        )

    async def sweep(self, room_ids: list[str]) -> int:
        """Start the queued pack offers and groups that are due in these rooms. A read
        of each room's due index first (one pipeline, no script), so the engine runs the
        guarded script only in rooms where something is due: most rooms have no pack."""
        now = _now()
        async with self._redis.pipeline(transaction=False) as pipe:
            for room_id in room_ids:
                pipe.zrangebyscore(RoomKeys.of(room_id).queued_due, "-inf", now, start=0, num=1)
            heads = await pipe.execute()
        calls: list[Call] = []
        for room_id in (r for r, head in zip(room_ids, heads, strict=True) if head):
            keys = RoomKeys.of(room_id)
            order_keys, order_args = order_call(room_id)
            calls.append(
                (
                    self._scripts.packs_fire,
                    [
                        *order_keys,
                        keys.price,
                        keys.offers,
                        keys.bands,
                        keys.queued,
                        keys.queued_due,
                        keys.session_offers,
                    ],
                    [
                        *order_args,
                        keys.offer(""),
                        f"of_{secrets.token_hex(4)}p",
                        f"g_{secrets.token_hex(4)}p",
                    ],
                )
            )
        return sum(int(n) for n in await run_many(self._redis, calls)) if calls else 0

    async def withdraw(self, pack_id: str, version: int) -> int | None:
        """Withdraw a version: never applied again, its queued offers cancelled in every
        room (live ones run out). Returns the queued offers cancelled; None: no version."""
        rows = await self._db.fetch_write(
            "UPDATE pack_versions SET withdrawn_at = COALESCE(withdrawn_at, $3) "
            "WHERE pack_id = $1 AND version = $2 RETURNING body",
            (pack_id, version, _now()),
        )
        if not rows:
            return None
        body = msgspec.json.decode(str(rows[0][0]), type=PackIn)
        room_ids = body.rooms if body.rooms is not None else await self._rooms.all_ids()
        field = f"{pack_id}:{version}"
        calls: list[Call] = []
        for room_id in room_ids:
            keys = RoomKeys.of(room_id)
            calls.append(
                (self._scripts.packs_withdraw, [keys.packs, keys.queued, keys.queued_due], [field])
            )
        cancelled = 0
        for start in range(0, len(calls), 500):
            cancelled += sum(
                int(n) for n in await run_many(self._redis, calls[start : start + 500])
            )
        return cancelled

    async def results(self, pack_id: str) -> list[PackResult]:
        """Per store that went live with the pack: its session's figures and the units
        and GMV of the pack's SKUs in that session (orders not cancelled)."""
        rows = await self._db.fetch(
            "SELECT a.version, a.room_id, a.session_id, a.applied_at, s.orders, s.units, "
            "s.gmv, s.viewers, s.buyers, s.ended_at FROM pack_applications a "
            "LEFT JOIN sessions s ON s.session_id = a.session_id "
            "WHERE a.pack_id = $1 ORDER BY a.room_id, a.version",
            (pack_id,),
        )
        out: list[PackResult] = []
        for row in rows:
            app = msgspec.convert(dict(zip(_APPLICATION, row, strict=True)), _Application)
            pack = await self.get(pack_id, app.version)
            skus = sorted(_skus(pack.body)) if pack else []
            sold = {
                sale.sku: sale
                for sale in (
                    msgspec.convert(dict(zip(("sku", "units", "gmv"), r, strict=True)), SkuSales)
                    for r in await self._db.fetch(
                        "SELECT sku, SUM(qty), SUM(qty * unit_price) FROM orders "
                        "WHERE session_id = $1 AND state <> 'cancelled' GROUP BY sku",
                        (app.session_id,),
                    )
                )
            }
            out.append(
                PackResult(
                    room=app.room_id,
                    version=app.version,
                    session_id=app.session_id,
                    applied_at=app.applied_at,
                    ended=app.ended_at is not None,
                    orders=app.orders or 0,
                    units=app.units or 0,
                    gmv=app.gmv or 0,
                    viewers=app.viewers or 0,
                    buyers=app.buyers or 0,
                    pack_skus=[sold.get(sku, SkuSales(sku, 0, 0)) for sku in skus],
                )
            )
        return out


_APPLICATION = (
    "version",
    "room_id",
    "session_id",
    "applied_at",
    "orders",
    "units",
    "gmv",
    "viewers",
    "buyers",
    "ended_at",
)


class _Application(msgspec.Struct, frozen=True):
    version: int
    room_id: str
    session_id: str
    applied_at: int
    orders: int | None
    units: int | None
    gmv: int | None
    viewers: int | None
    buyers: int | None
    ended_at: int | None


class SkuSales(msgspec.Struct, frozen=True):
    sku: str
    units: int
    gmv: int


class PackResult(msgspec.Struct, frozen=True):
    """One store's result with a pack: its session (from the database) and the pack's
    SKUs sold in it."""

    room: str
    version: int
    session_id: str
    applied_at: int
    ended: bool
    orders: int
    units: int
    gmv: int
    viewers: int
    buyers: int
    pack_skus: list[SkuSales]


def _skus(body: PackIn) -> set[str]:
    return {i.sku for i in body.products} | {o.sku for o in body.offers}


def _pack(row: tuple[object, ...]) -> Pack:
    pack_id, version, body, created_at, withdrawn_at = row
    return msgspec.convert(
        {
            "pack_id": pack_id,
            "version": version,
            "created_at": created_at,
            "withdrawn_at": withdrawn_at,
            "body": msgspec.json.decode(str(body), type=PackIn),
        },
        Pack,
    )
