"""Rooms: a store's live room, its products' public state, broadcast sessions (场次),
pinning and chat on the room stream.

Owns the room hash, the product metadata hash, the `ls:rooms` index and the SQLite
`sessions` table. Snapshots are read in one script so that a snapshot and its `seq`
agree. Stock arithmetic belongs to `inventory`, offers to `offers`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from liveshop.commerce.groups import group_from_hash
from liveshop.commerce.groups import visible as group_visible
from liveshop.core import protocol as p
from liveshop.core.keys import NETWORK_ROOMS, OUTBOX_GROUP, ROOMS_INDEX, RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.connections import AnyRedis
from liveshop.engine.database import Database, Migration
from liveshop.engine.scripts import Scripts

MIGRATIONS = [
    Migration(
        "rooms",
        1,
        """
        CREATE TABLE IF NOT EXISTS sessions (
            session_id  TEXT PRIMARY KEY,
            room_id     TEXT NOT NULL,
            title       TEXT NOT NULL DEFAULT '',
            started_at  BIGINT NOT NULL,
            ended_at    BIGINT,
            peak        INTEGER NOT NULL DEFAULT 0,
            orders      INTEGER NOT NULL DEFAULT 0,
            units       INTEGER NOT NULL DEFAULT 0,
            gmv         BIGINT NOT NULL DEFAULT 0,
            buyers      INTEGER NOT NULL DEFAULT 0,
            viewers     INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS sessions_room ON sessions (room_id, started_at)
        """,
    ),
    Migration(
        "rooms",
        2,
        """
        ALTER TABLE sessions ADD COLUMN group_joins INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN groups_succeeded INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN groups_failed INTEGER NOT NULL DEFAULT 0
        """,
    ),
]
SESSION_COLUMNS = (
    "session_id",
    "room_id",
    "title",
    "started_at",
    "ended_at",
    "peak",
    "orders",
    "units",
    "gmv",
    "buyers",
    "viewers",
    "group_joins",
    "groups_succeeded",
    "groups_failed",
)


class ProductMeta(msgspec.Struct, omit_defaults=True):
    name: str
    image: str | None = None


_meta_decoder = msgspec.json.Decoder(ProductMeta)
_offer_decoder = msgspec.json.Decoder(p.OfferState)  # an offer message, type ignored


def _pairs(flat: list[bytes]) -> dict[str, str]:
    it = iter(flat)
    return {k.decode(): v.decode() for k, v in zip(it, it, strict=True)}


@dataclass(slots=True)
class Snapshot:
    """A room's state at stream position `seq`, plus the messages a resume missed."""

    seq: int
    state: p.RoomState
    resumed: bool
    missed: list[str] = field(default_factory=list)
    poll_ids: list[str] = field(default_factory=list)  # the room's polls and draws (ids)
    draw_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SessionTotals:
    session_id: str
    title: str
    started_at: int
    ended_at: int
    peak: int
    orders: int
    units: int
    gmv: int
    buyers: int
    viewers: int
    # group buying in the session: joins (every accepted join, a room's group or an HQ
    # deal), and the room's groups that succeeded / failed or were cancelled in it
    group_joins: int = 0
    groups_succeeded: int = 0
    groups_failed: int = 0
    # what the post-live review keeps (commerce.reviews stores it): peak viewers per
    # minute of the session, its offers as they ended, its hints (JSON), its groups
    viewers_by_minute: dict[int, int] = field(default_factory=dict)
    offers: list[p.OfferState] = field(default_factory=list)
    hints: list[bytes] = field(default_factory=list)
    groups: list[p.GroupState] = field(default_factory=list)


def _session_keys(keys: RoomKeys) -> list[str]:
    """KEYS of rooms_set_live.lua."""
    return [
        keys.room,
        keys.seq,
        keys.history,
        keys.stats,
        keys.buyers,
        keys.audience,
        keys.offers,
        keys.minutes,
        keys.session_offers,
        keys.hints_log,
        keys.groups,
        keys.outbox,
        keys.reservations,
    ]


def session_units(stats: dict[str, int]) -> int:
    """The session's units: the sum of its per-SKU counts (the purchase script keeps
    only those, one write fewer per purchase; `units` is read from rooms stored before)."""
    return sum(v for k, v in stats.items() if k.startswith("u:")) or stats.get("units", 0)


def session_gmv(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k.startswith("g:")) or stats.get("gmv", 0)


def new_session_id() -> str:
    return "ls_" + secrets.token_hex(6)


def offer_from_hash(fields: dict[str, str]) -> p.OfferState:
    status = fields["status"]
    if not p.is_offer_status(status):
        raise ValueError(f"offer {fields.get('offer_id')!r} has unknown status {status!r}")
    return p.OfferState(
        offer_id=fields["offer_id"],
        sku=fields["sku"],
        price=int(fields["price"]),
        qty=int(fields["qty"]),
        left=int(fields["left"]),
        per_user_limit=int(fields["per_user_limit"]),
        starts_at=int(fields["starts_at"]),
        ends_at=int(fields["ends_at"]),
        status=status,
    )


class Rooms:
    """Room-level reads and writes. One instance per process."""

    def __init__(self, redis: AnyRedis, scripts: Scripts, db: Database) -> None:
        self._redis = redis
        self._scripts = scripts
        self._db = db
        self._known: set[str] = set()

    async def init_schema(self) -> None:
        await self._db.migrate(MIGRATIONS)

    async def exists(self, room_id: str) -> bool:
        if room_id in self._known:
            return True
        if await self._redis.sismember(ROOMS_INDEX, room_id):
            self._known.add(room_id)
            return True
        return False

    async def all_ids(self) -> list[str]:
        return sorted(as_text(m) for m in await self._redis.smembers(ROOMS_INDEX))

    async def fields_of(self, room_ids: Sequence[str], *names: str) -> dict[str, dict[str, str]]:
        """Some fields of many rooms' hashes (name, region, …) in one pipeline; a field a
        room has not set reads as ''."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for room_id in room_ids:
                pipe.hmget(RoomKeys.of(room_id).room, list(names))
            replies = await pipe.execute()
        return {
            room_id: {name: as_text(v) if v else "" for name, v in zip(names, reply, strict=True)}
            for room_id, reply in zip(room_ids, replies, strict=True)
        }

    async def put(
        self,
        room_id: str,
        *,
        name: str,
        title: str = "",
        stream_url: str = "",
        settings: dict[str, str] | None = None,
    ) -> None:
        """Create or update a room; its outbox and consumer group exist from then on.
        `settings`: v1.1 fields (payment, hold_s, pickup_days, lat, lng, …) the scripts
        read from the room hash; those not given keep their value."""
        keys = RoomKeys.of(room_id)
        fields: dict[FieldT, EncodableT] = {
            "name": name,
            "default_title": title,
            "stream_url": stream_url,
        }
        fields.update(settings or {})
        await self._redis.hset(keys.room, mapping=fields)
        await self._redis.hsetnx(keys.room, "live", "0")
        try:
            await self._redis.xgroup_create(keys.outbox, OUTBOX_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self._redis.sadd(ROOMS_INDEX, room_id)
        kind = (settings or {}).get("kind")
        if kind == "network":  # a joint room (commerce.joint_rooms routes its purchases)
            await self._redis.sadd(NETWORK_ROOMS, room_id)
        elif kind == "store":
            await self._redis.srem(NETWORK_ROOMS, room_id)
        self._known.add(room_id)

    async def snapshot(self, room_id: str, resume_from: int | None = None) -> Snapshot:
        keys = RoomKeys.of(room_id)
        reply = await self._scripts.rooms_snapshot(
            keys=[
                keys.room,
                keys.products,
                keys.price,
                keys.stock,
                keys.seq,
                keys.history,
                keys.offers,
                keys.presence,
                keys.presence_exp,
                keys.groups,
                keys.removed,
                keys.polls,
                keys.draws,
                keys.reservations,
            ],
            args=["" if resume_from is None else resume_from, keys.offer(""), keys.group("")],
        )
        seq, room_flat, meta_flat, price_flat, stock_flat, offers, viewers, resumed, missed = reply[
            :9
        ]
        now = now_ms()
        groups = []
        for flat in reply[9]:
            fields = _pairs(flat)
            if group_visible(fields, now):
                groups.append(group_from_hash(fields["group_id"], fields))
        room = _pairs(room_flat)
        prices = _pairs(price_flat)
        stock = _pairs(stock_flat)
        products = []
        for sku, meta_json in sorted(_pairs(meta_flat).items()):
            meta = _meta_decoder.decode(meta_json)
            products.append(
                p.Product(
                    sku=sku,
                    name=meta.name,
                    price=int(prices.get(sku, 0)),
                    stock=int(stock.get(sku, 0)),
                    image=meta.image,
                )
            )
        live = room.get("live") == "1"
        state = p.RoomState(
            live=live,
            viewers=int(viewers),
            products=products,
            offers=sorted((offer_from_hash(_pairs(o)) for o in offers), key=lambda o: o.starts_at),
            session_id=room.get("session_id") or None,
            title=(room.get("title") if live else room.get("default_title")) or None,
            pinned=room.get("pinned") or None,
            name=room.get("name") or None,
            stream_url=room.get("stream_url") or None,
            peak=int(room.get("peak", 0)) if live else None,
            groups=sorted(groups, key=lambda g: g.ends_at) or None,
            kind="network" if room.get("kind") == "network" else None,
            stores=[s for s in room.get("stores", "").split(",") if s] or None
            if room.get("kind") == "network"
            else None,
            # v1.1 schedule: while not live, the next live and how many reserved it
            next_live_at=int(room.get("next_live_at") or 0) or None if not live else None,
            next_title=room.get("next_title") or None if not live else None,
            reservations=int(reply[12]) if not live else None,
        )
        return Snapshot(
            seq=int(seq),
            state=state,
            resumed=bool(resumed),
            missed=[m.decode() for m in missed],
            poll_ids=[i.decode() for i in reply[10]],
            draw_ids=[i.decode() for i in reply[11]],
        )

    async def product_names(self, room_id: str) -> dict[str, str]:
        raw = await self._redis.hgetall(RoomKeys.of(room_id).products)
        return {as_text(sku): _meta_decoder.decode(meta).name for sku, meta in raw.items()}

    # -- broadcast sessions ------------------------------------------------------

    async def go_live(self, room_id: str, title: str | None) -> tuple[bool, str]:
        """Open a session; returns (opened_now, session_id). Already live: no change."""
        keys = RoomKeys.of(room_id)
        if not title:
            title = as_text(await self._redis.hget(keys.room, "default_title") or b"")
        session_id = new_session_id()
        reply = await self._scripts.rooms_set_live(
            keys=_session_keys(keys),
            args=["go", session_id, title, keys.channel, keys.offer(""), keys.group("")],
        )
        status, sid, title_b, started_at = reply
        if status == b"ok":
            await self.session_opened(room_id, sid.decode(), title_b.decode(), int(started_at))
        return status == b"ok", sid.decode()

    async def session_opened(
        self, room_id: str, session_id: str, title: str, started_at: int
    ) -> None:
        """Record a session the engine opened (here or with a campaign pack)."""
        await self._db.execute(
            "INSERT INTO sessions (session_id, room_id, title, started_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO NOTHING",
            (session_id, room_id, title, started_at),
        )

    async def end_live(self, room_id: str) -> SessionTotals | None:
        """Close the session, end its offers, store its totals. None when not live."""
        keys = RoomKeys.of(room_id)
        reply = await self._scripts.rooms_set_live(
            keys=_session_keys(keys),
            args=["end", "", "", keys.channel, keys.offer(""), keys.group("")],
        )
        if reply[0] != b"ok":
            return None
        _, sid, title, started_at, ended_at, peak, buyers, audience, stats_flat = reply[:9]
        minutes_flat, offer_bodies, hints, group_hashes = reply[9:13]
        stats = _pairs(stats_flat)
        counts = {k: int(v) for k, v in stats.items() if k != "last_order_at"}
        totals = SessionTotals(
            session_id=sid.decode(),
            title=title.decode(),
            started_at=int(started_at),
            ended_at=int(ended_at),
            peak=int(peak),
            orders=int(stats.get("orders", 0)),
            units=session_units(counts),
            gmv=session_gmv(counts),
            buyers=int(buyers),
            viewers=int(audience),
            group_joins=counts.get("group_joins", 0),
            groups_succeeded=counts.get("groups_succeeded", 0),
            groups_failed=counts.get("groups_failed", 0),
            viewers_by_minute={int(k): int(v) for k, v in _pairs(minutes_flat).items()},
            offers=[_offer_decoder.decode(b) for b in offer_bodies],
            hints=[bytes(h) for h in hints],
            groups=[group_from_hash(as_text(g[0]), _pairs(g[1:])) for g in group_hashes],
        )
        await self.store_session(room_id, totals)
        return totals

    async def store_session(self, room_id: str, t: SessionTotals) -> None:
        await self._db.execute(
            "INSERT INTO sessions (session_id, room_id, title, started_at, ended_at, peak, "
            "orders, units, gmv, buyers, viewers, group_joins, groups_succeeded, "
            "groups_failed) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
            "ON CONFLICT (session_id) DO UPDATE SET ended_at=excluded.ended_at, "
            "peak=excluded.peak, orders=excluded.orders, units=excluded.units, "
            "gmv=excluded.gmv, buyers=excluded.buyers, viewers=excluded.viewers, "
            "group_joins=excluded.group_joins, groups_succeeded=excluded.groups_succeeded, "
            "groups_failed=excluded.groups_failed",
            (
                t.session_id,
                room_id,
                t.title,
                t.started_at,
                t.ended_at,
                t.peak,
                t.orders,
                t.units,
                t.gmv,
                t.buyers,
                t.viewers,
                t.group_joins,
                t.groups_succeeded,
                t.groups_failed,
            ),
        )

    async def set_schedule(self, room_id: str, next_live_at: int, next_title: str) -> None:
        """The next live (epoch ms, 0: none) and its title, for `welcome.state`."""
        await self._redis.hset(
            RoomKeys.of(room_id).room,
            mapping={"next_live_at": next_live_at, "next_title": next_title},
        )

    async def sessions(self, room_id: str, limit: int = 50) -> list[dict[str, object]]:
        rows = await self._db.fetch(
            f"SELECT {', '.join(SESSION_COLUMNS)} FROM sessions WHERE room_id = $1 "
            "ORDER BY started_at DESC LIMIT $2",
            (room_id, limit),
        )
        return [dict(zip(SESSION_COLUMNS, row, strict=True)) for row in rows]

    # -- things the broadcaster and viewers put on the stream ------------------------

    async def pin(self, room_id: str, sku: str) -> bool:
        keys = RoomKeys.of(room_id)
        reply = await self._scripts.rooms_pin(
            keys=[keys.room, keys.price, keys.seq, keys.history], args=[sku, keys.channel]
        )
        return bool(reply == b"ok")  # the script's reply is untyped (Any)

    async def chat(self, room_id: str, user: str, text: str) -> int:
        keys = RoomKeys.of(room_id)
        body = msgspec.json.encode({"type": "chat", "user": user, "text": text})[:-1]
        return int(
            await self._scripts.rooms_emit(
                keys=[keys.seq, keys.history], args=["-", body, keys.channel]
            )
        )


def now_ms() -> int:
    return time.time_ns() // 1_000_000
