"""Orders: the outbox → database persister, the orders and order_events tables.

Owns the `orders` and `order_events` tables and the reading side of every room's outbox
stream (consumer group `persister`). Contract: at least once from the outbox (an entry
is XACKed and deleted only after the database commit that holds it), exactly once in the
database: an entry is an order's whole state at a `version` plus the event that made it;
the event's key is (order_id, version), inserted ON CONFLICT DO NOTHING, and the order
row is upserted only when its version is newer, so redelivered, reclaimed or reordered
entries leave every order at its latest version with each event stored once. Refund
entries go to `refunds.RefundLedger`. Entries left pending by a dead consumer are
claimed after `claim_idle_ms`, so any number of persisters run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import structlog
from redis.exceptions import RedisError

from liveshop.commerce.refunds import NewRefund, RefundLedger
from liveshop.commerce.webhooks import Event, Webhooks, group_closed, order_events
from liveshop.core import metrics
from liveshop.core.keys import OUTBOX_GROUP, ROOMS_INDEX, RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.connections import AnyRedis, is_cluster
from liveshop.engine.database import Database, Migration

log = structlog.get_logger("liveshop.commerce.orders")

MIGRATIONS = [
    Migration(
        "orders",
        1,
        """
        CREATE TABLE IF NOT EXISTS orders (
            order_id     TEXT PRIMARY KEY,
            room_id      TEXT NOT NULL,
            session_id   TEXT NOT NULL,
            user_id      TEXT NOT NULL,
            sku          TEXT NOT NULL,
            qty          INTEGER NOT NULL,
            unit_price   INTEGER NOT NULL,
            offer_id     TEXT,
            pickup_code  TEXT NOT NULL,
            status       TEXT NOT NULL,
            created_at   BIGINT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS orders_room ON orders (room_id, created_at);
        CREATE INDEX IF NOT EXISTS orders_session ON orders (session_id)
        """,
    ),
    Migration(
        "orders",
        2,
        """
        ALTER TABLE orders ADD COLUMN state TEXT NOT NULL DEFAULT 'accepted';
        ALTER TABLE orders ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE orders ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE orders ADD COLUMN method TEXT NOT NULL DEFAULT 'pickup';
        ALTER TABLE orders ADD COLUMN address TEXT;
        ALTER TABLE orders ADD COLUMN lat DOUBLE PRECISION;
        ALTER TABLE orders ADD COLUMN lng DOUBLE PRECISION;
        ALTER TABLE orders ADD COLUMN phone TEXT;
        ALTER TABLE orders ADD COLUMN pay_by BIGINT;
        ALTER TABLE orders ADD COLUMN paid_at BIGINT;
        ALTER TABLE orders ADD COLUMN txn_id TEXT;
        ALTER TABLE orders ADD COLUMN pickup_by BIGINT;
        ALTER TABLE orders ADD COLUMN verified_at BIGINT;
        ALTER TABLE orders ADD COLUMN verified_by TEXT;
        ALTER TABLE orders ADD COLUMN delivery_status TEXT;
        ALTER TABLE orders ADD COLUMN refund_amount BIGINT;
        ALTER TABLE orders ADD COLUMN refund_state TEXT;
        ALTER TABLE orders ADD COLUMN reason TEXT;
        ALTER TABLE orders ADD COLUMN group_id TEXT;
        CREATE INDEX IF NOT EXISTS orders_room_state ON orders (room_id, state);
        CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id, created_at);
        CREATE TABLE IF NOT EXISTS order_events (
            order_id    TEXT NOT NULL,
            version     INTEGER NOT NULL,
            room_id     TEXT NOT NULL,
            from_state  TEXT NOT NULL,
            to_state    TEXT NOT NULL,
            by_path     TEXT NOT NULL,
            actor       TEXT NOT NULL,
            reason      TEXT NOT NULL,
            at          BIGINT NOT NULL,
            PRIMARY KEY (order_id, version)
        )
        """,
    ),
    Migration(
        "orders",
        3,
        """
        ALTER TABLE orders ADD COLUMN pool TEXT
        """,
    ),
    Migration(
        "orders",
        4,
        """
        ALTER TABLE orders ADD COLUMN via TEXT;
        ALTER TABLE orders ADD COLUMN route_rule TEXT;
        ALTER TABLE orders ADD COLUMN route_distance_m INTEGER
        """,
    ),
]

# States whose units are sold (reconciliation sums these against the engine's `sold`).
SOLD_STATES = (
    "accepted",
    "paid",
    "ready",
    "out_for_delivery",
    "picked_up",
    "delivered",
    "delivery_failed",
)

COLUMNS = (
    "order_id",
    "room_id",
    "session_id",
    "user_id",
    "sku",
    "qty",
    "unit_price",
    "offer_id",
    "pickup_code",
    "status",
    "created_at",
    "state",
    "version",
    "updated_at",
    "method",
    "address",
    "lat",
    "lng",
    "phone",
    "pay_by",
    "paid_at",
    "txn_id",
    "pickup_by",
    "verified_at",
    "verified_by",
    "delivery_status",
    "refund_amount",
    "refund_state",
    "reason",
    "group_id",
    "pool",
    "via",
    "route_rule",
    "route_distance_m",
)
_INTS = frozenset(
    (
        "qty",
        "unit_price",
        "created_at",
        "version",
        "updated_at",
        "pay_by",
        "paid_at",
        "pickup_by",
        "verified_at",
        "refund_amount",
        "route_distance_m",
    )
)
_FLOATS = frozenset(("lat", "lng"))
_OPTIONAL = frozenset(COLUMNS[14:]) - {"method"} | {"offer_id"}
# Exactly once by order id, on both engines: a redelivered entry changes nothing, an
# older version never overwrites a newer one.
_UPSERT = (
    f"INSERT INTO orders ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))}) "
    "ON CONFLICT (order_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[11:])
    + " WHERE orders.version < excluded.version"
)
EVENT_COLUMNS = (
    "order_id",
    "version",
    "room_id",
    "from_state",
    "to_state",
    "by_path",
    "actor",
    "reason",
    "at",
)
_INSERT_EVENT = (
    f"INSERT INTO order_events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(EVENT_COLUMNS) + 1))}) "
    "ON CONFLICT (order_id, version) DO NOTHING"
)


class Order(msgspec.Struct, frozen=True):
    """A row of `orders`."""

    order_id: str
    room_id: str
    session_id: str
    user_id: str
    sku: str
    qty: int
    unit_price: int
    offer_id: str | None
    pickup_code: str
    status: str
    created_at: int
    state: str = "accepted"
    version: int = 1
    updated_at: int = 0
    method: str = "pickup"
    address: str | None = None
    lat: float | None = None
    lng: float | None = None
    phone: str | None = None
    pay_by: int | None = None
    paid_at: int | None = None
    txn_id: str | None = None
    pickup_by: int | None = None
    verified_at: int | None = None
    verified_by: str | None = None
    delivery_status: str | None = None
    refund_amount: int | None = None
    refund_state: str | None = None
    reason: str | None = None
    group_id: str | None = None
    pool: str | None = None  # "chain": a cross-store deal's own stock, not the room's
    # a joint room's order, fulfilled by this store: the joint room and how it was routed
    via: str | None = None
    route_rule: str | None = None
    route_distance_m: int | None = None


OrderRow = tuple[object, ...]  # one row of `orders`, in COLUMNS order
EventRow = tuple[object, ...]  # one row of `order_events`, in EVENT_COLUMNS order
# An outbox entry as read: (stream, entry id, fields).
OutboxEntry = tuple[str, bytes, dict[bytes, bytes]]


_packed = msgspec.json.Decoder(dict[str, str])


def _order_fields(fields: dict[bytes, bytes]) -> dict[str, str]:
    """A v1.1 entry carries the order as JSON in `o`; a v1 entry as stream fields."""
    packed = fields.get(b"o")
    if packed is not None:
        return _packed.decode(packed)
    return {k.decode(): v.decode() for k, v in fields.items()}


def _row(fields: dict[bytes, bytes]) -> OrderRow:
    """An order's state from an outbox entry (v1.1 'order'/'move', or a v1 order)."""
    f = _order_fields(fields)
    f.setdefault("state", "accepted")  # a v1 entry: accepted, version 1
    f.setdefault("version", "1")
    f.setdefault("updated_at", f["created_at"])
    f.setdefault("method", "pickup")
    f["status"] = "accepted"  # v1's column: every stored order was an accepted buy
    values: list[object] = []
    for column in COLUMNS:
        raw = f.get(column, "")
        if raw == "" and column in _OPTIONAL:
            values.append(None)
        elif column in _INTS:
            values.append(int(raw))
        elif column in _FLOATS:
            values.append(float(raw))
        else:
            values.append(raw)
    return tuple(values)


def _event(fields: dict[bytes, bytes], row: OrderRow) -> EventRow:
    """The event that made this version (a v1 entry: the purchase)."""
    e = _packed.decode(fields[b"e"]) if b"e" in fields else {}
    order_id, room_id, user_id = row[0], row[1], row[3]
    state, version, updated_at = row[11], row[12], row[13]
    return (
        order_id,
        version,
        room_id,
        e.get("from", ""),
        state,
        e.get("by", "purchase"),
        e.get("actor") or user_id,
        e.get("reason", ""),
        updated_at,
    )


def _new_refund(fields: dict[bytes, bytes]) -> NewRefund:
    f = {k.decode(): v.decode() for k, v in fields.items()}
    return (
        f["order_id"],
        f["reason"],
        f["room_id"],
        f["user_id"],
        int(f["amount"]),
        f.get("txn_id", ""),
        int(f["created_at"]),
    )


def _group_closed(fields: dict[bytes, bytes]) -> Event:
    """A room group's close (lua/_groups.lua `end_group`) as its `group.closed` event."""
    data: dict[str, object] = msgspec.json.decode(fields[b"g"])
    del data["type"]
    return group_closed(
        fields[b"room_id"].decode(), fields[b"group_id"].decode(), int(fields[b"at"]), data
    )


def _live_event(stream: str, fields: dict[bytes, bytes]) -> Event:
    """A session's start or end (lua `open_session`, rooms_set_live.lua) as its webhook."""
    f = {k.decode(): v.decode() for k, v in fields.items()}
    room_id = RoomKeys.room_of(stream)
    data: dict[str, object] = {"session_id": f["session_id"]}
    if f["event"] == "live.started":
        data |= {"title": f["title"], "reserved": msgspec.json.decode(f["reserved"])}
    else:
        data["orders"] = int(f["orders"])
    event_id = f"{f['event']}:{room_id}:{f['session_id']}"
    return (event_id, f["event"], room_id, int(f["at"]), data)


class OrderStore:
    """The `orders` table, on SQLite or PostgreSQL (engine.database)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.webhooks: Webhooks | None = None  # set by the app when webhooks are on

    @property
    def db(self) -> Database:
        return self._db

    async def init_schema(self) -> None:
        await self._db.migrate(MIGRATIONS)

    async def insert(self, rows: Sequence[OrderRow], events: Sequence[EventRow] = ()) -> None:
        """Upsert order states (a newer version wins), then insert their events."""
        if rows:
            await self._db.execute_many(_UPSERT, rows)
        if events:
            await self._db.execute_many(_INSERT_EVENT, events)
            if self.webhooks is not None:  # before the outbox ack: a crash repeats it
                await self.webhooks.enqueue(order_events(events))

    async def events(self, order_id: str) -> list[dict[str, object]]:
        rows = await self._db.fetch(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM order_events WHERE order_id = $1 "
            "ORDER BY version",
            (order_id,),
        )
        return [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows]

    async def list(
        self,
        *,
        room_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        states: Sequence[str] = (),
        limit: int = 100,
    ) -> list[Order]:
        where: list[str] = []
        params: list[object] = []
        if states:
            marks = []
            for state in states:
                params.append(state)
                marks.append(f"${len(params)}")
            where.append(f"state IN ({', '.join(marks)})")
        for column, value in (
            ("room_id", room_id),
            ("session_id", session_id),
            ("user_id", user_id),
        ):
            if value:
                params.append(value)
                where.append(f"{column} = ${len(params)}")
        sql = f"SELECT {', '.join(COLUMNS)} FROM orders"
        if where:
            sql += " WHERE " + " AND ".join(where)
        params.append(limit)
        sql += f" ORDER BY created_at DESC, order_id LIMIT ${len(params)}"
        rows = await self._db.fetch(sql, params)
        return [msgspec.convert(dict(zip(COLUMNS, row, strict=True)), Order) for row in rows]

    async def units_sold(self, room_id: str) -> dict[str, int]:
        """sku -> units sold in the database for the room: orders in a sold state from
        the room's own shelf (what reconciliation compares with the engine's `sold`)."""
        marks = ", ".join(f"${i}" for i in range(2, len(SOLD_STATES) + 2))
        rows = await self._db.fetch(
            f"SELECT sku, SUM(qty) FROM orders WHERE room_id = $1 AND state IN ({marks}) "
            "AND pool IS NULL GROUP BY sku",
            [room_id, *SOLD_STATES],
        )
        return {str(sku): int(str(units)) for sku, units in rows}


class Persister:
    """Moves accepted orders from every room's outbox into SQLite.

    On one Redis a pass is one blocking XREADGROUP over every room's outbox. On a
    Cluster a command may only touch one slot, so each room's outbox is read on its own
    shard: one pipeline per shard and pass, the shards in parallel. Rooms whose outbox
    was empty for a while (`cold_after_ms`) are read every `cold_poll_ms` instead of
    every pass, so a chain of idle rooms costs little; a cold room's first order waits
    at most that long, then the room is read every pass again.
    """

    def __init__(
        self,
        redis: AnyRedis,
        store: OrderStore,
        *,
        batch: int = 500,
        claim_idle_ms: int = 5000,
        block_ms: int = 200,
        cold_after_ms: int = 5000,
        cold_poll_ms: int = 1000,
        refunds: RefundLedger | None = None,
    ) -> None:
        self._refunds = refunds or RefundLedger(store.db)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}"
        self._redis = redis
        self._sharded = is_cluster(redis)
        self._store = store
        self._batch = batch
        self._claim_idle_ms = claim_idle_ms
        self._block_ms = block_ms
        self._cold_after_s = cold_after_ms / 1000
        self._cold_poll_s = cold_poll_ms / 1000
        self._grouped: set[str] = set()
        self._last_entry: dict[str, float] = {}  # stream -> loop time it last had entries
        self._last_read: dict[str, float] = {}  # stream -> loop time it was last read
        self.stored = 0
        self.health = PersisterHealth()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the current pass and return from run() (no cancellation mid-command)."""
        self._stopping.set()

    async def _streams(self) -> list[str]:
        rooms = sorted(as_text(m) for m in await self._redis.smembers(ROOMS_INDEX))
        streams = [RoomKeys.of(room_id).outbox for room_id in rooms]
        new = [key for key in streams if key not in self._grouped]
        if new:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in new:
                    pipe.xgroup_create(key, OUTBOX_GROUP, id="0", mkstream=True)
                results = await pipe.execute(raise_on_error=False)
            for key, result in zip(new, results, strict=True):
                if isinstance(result, Exception) and "BUSYGROUP" not in str(result):
                    raise result
                self._grouped.add(key)
        return streams

    async def _commit(self, entries: list[OutboxEntry]) -> int:
        """Store entries [(stream, id, fields)] and only then acknowledge them."""
        if not entries:
            return 0
        started = time.perf_counter()
        rows: list[OrderRow] = []
        events: list[EventRow] = []
        refunds: list[NewRefund] = []
        hooks: list[Event] = []  # group.closed, live.started, live.ended
        for stream, _, fields in entries:
            kind = fields.get(b"kind")
            if kind == b"refund":
                refunds.append(_new_refund(fields))
                continue
            if kind == b"group":
                hooks.append(_group_closed(fields))
                continue
            if kind == b"live":
                hooks.append(_live_event(stream, fields))
                continue
            row = _row(fields)
            rows.append(row)
            events.append(_event(fields, row))
        await self._store.insert(rows, events)
        if refunds:
            await self._refunds.record(refunds)
        if hooks and self._store.webhooks is not None:
            await self._store.webhooks.enqueue(hooks)
        by_stream: dict[str, list[bytes]] = {}
        for stream, entry_id, _ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        # One pipeline: on a Cluster redis-py sends it as one round per shard. XDEL before
        # XACK: a process killed between the two (a pipeline is not one write) leaves a
        # pending id whose entry is gone, which the next XAUTOCLAIM drops; the other order
        # would leave a stored, acknowledged entry in the outbox for ever (counted as
        # unstored by reconciliation).
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xdel(stream, *ids)
                pipe.xack(stream, OUTBOX_GROUP, *ids)
            await pipe.execute()
        metrics.persist_commit.observe(time.perf_counter() - started)
        metrics.persist_batch.observe(len(entries))
        self.stored += len(entries)
        return len(entries)

    async def claim_stale(self, streams: list[str]) -> int:
        """Take over entries that a dead (or stuck) consumer read but never acknowledged."""
        total = 0
        cursors = dict.fromkeys(streams, "0-0")
        while cursors:
            async with self._redis.pipeline(transaction=False) as pipe:
                for stream, start in cursors.items():
                    pipe.xautoclaim(
                        stream,
                        OUTBOX_GROUP,
                        self.consumer,
                        self._claim_idle_ms,
                        start_id=start,
                        count=self._batch,
                    )
                replies = await pipe.execute()
            entries: list[OutboxEntry] = []
            more: dict[str, str] = {}
            for stream, (next_start, claimed, *_) in zip(cursors, replies, strict=True):
                entries += [(stream, eid, fields) for eid, fields in claimed if fields]
                if next_start not in (b"0-0", "0-0"):
                    more[stream] = next_start
            total += await self._commit(entries)
            cursors = more
        return total

    async def pass_once(self, *, block_ms: int | None = None) -> int:
        """Read and store one batch of new entries; returns how many were stored."""
        block = self._block_ms if block_ms is None else block_ms
        streams = await self._streams()
        if not streams:
            await self._pause(block)
            return 0
        if self._sharded:
            entries = await self._read_per_shard(streams)
            if not entries:
                await self._pause(block)
        else:
            reply = await self._redis.xreadgroup(
                OUTBOX_GROUP,
                self.consumer,
                dict.fromkeys(streams, ">"),
                count=self._batch,
                block=block,
            )
            # redis-py's legacy reply shape (its default): [[stream, [(id, fields)]]], or
            # [] on a timeout; its type also admits the dicts of legacy_responses=False.
            if not isinstance(reply, list):
                raise TypeError(f"XREADGROUP replied with a {type(reply).__name__}")
            entries = [
                (stream.decode(), eid, fields)
                for stream, items in reply
                for eid, fields in items
                if fields
            ]
        return await self._commit(entries)

    async def _read_per_shard(self, streams: list[str]) -> list[OutboxEntry]:
        """One non-blocking XREADGROUP per due outbox, pipelined: one round per shard."""
        now = asyncio.get_running_loop().time()
        due = [
            s
            for s in streams
            if now - self._last_entry.get(s, now) < self._cold_after_s
            or now - self._last_read.get(s, -1e9) >= self._cold_poll_s
        ]
        if not due:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in due:
                pipe.xreadgroup(OUTBOX_GROUP, self.consumer, {stream: ">"}, count=self._batch)
            replies = await pipe.execute()
        entries: list[OutboxEntry] = []
        for stream, reply in zip(due, replies, strict=True):
            self._last_read[stream] = now
            got = [(stream, eid, fields) for _, items in (reply or []) for eid, fields in items]
            if got:
                self._last_entry[stream] = now
            else:
                self._last_entry.setdefault(stream, now)
            entries += [e for e in got if e[2]]
        return entries

    async def _pause(self, block_ms: int) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), block_ms / 1000)

    async def drain(self) -> int:
        """Store everything in the outboxes now (used at shutdown and by tests)."""
        self._last_read.clear()  # every outbox is due
        total = await self.claim_stale(await self._streams())
        while (n := await self.pass_once(block_ms=1)) > 0:
            total += n
            self._last_read.clear()
        return total

    async def run(self) -> None:
        """Pass after pass until stop(). Any failure is logged and retried with backoff:
        the loop never dies of an exception (a Cluster error is not a RedisError, a
        database can be locked or full), and `health` says how it is doing."""
        loop = asyncio.get_running_loop()
        last_claim = 0.0
        backoff = 0.1
        self.health.started = loop.time()
        while not self._stopping.is_set():
            try:
                if loop.time() - last_claim >= self._claim_idle_ms / 2000:
                    last_claim = loop.time()
                    await self.claim_stale(await self._streams())
                n = await self.pass_once()
                if n:
                    log.debug("orders stored", count=n)
                self.health.passed(loop.time())
                backoff = 0.1
            except Exception as exc:
                self.health.failed(exc)
                log.warning(
                    "persister pass failed; retrying",
                    error=repr(exc),
                    retry_in=backoff,
                    failures=self.health.failures,
                    exc_info=not isinstance(exc, RedisError | OSError),
                )
                await self._pause(int(backoff * 1000))
                backoff = min(backoff * 2, 2.0)


@dataclass
class PersisterHealth:
    """How the persister loop is doing, for /readyz and the logs."""

    started: float | None = None  # loop time run() (last) started
    last_ok: float | None = None  # loop time of the last pass that completed
    failures: int = 0  # consecutive failed passes
    last_error: str | None = None
    restarts: int = 0  # times a supervisor restarted run() after it raised

    def passed(self, now: float) -> None:
        self.last_ok = now
        self.failures = 0
        self.last_error = None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = repr(exc)[:300]

    def ok(self, now: float, *, stale_after_s: float = 10.0) -> bool:
        """Healthy: a pass completed within `stale_after_s` of now (or of the start)."""
        since = self.last_ok if self.last_ok is not None else self.started
        return since is None or now - since <= stale_after_s
