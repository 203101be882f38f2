"""Orders: the outbox → SQLite persister and the orders table.

Owns the `orders` table and the reading side of every room's outbox stream (consumer
group `persister`). Contract: at least once from the outbox (an entry is XACKed and
deleted only after the SQLite commit that holds it), exactly once in SQLite (order_id
is the primary key, inserts are INSERT OR IGNORE). Entries left pending by a dead
consumer are claimed after `claim_idle_ms`, so any number of persisters may run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

import aiosqlite
import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from liveshop.keys import OUTBOX_GROUP, ROOMS_INDEX, RoomKeys

log = structlog.get_logger("liveshop.orders")

ORDERS_SCHEMA = """
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
    created_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_room ON orders (room_id, created_at);
CREATE INDEX IF NOT EXISTS orders_session ON orders (session_id);
"""

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
)
_INSERT = (
    f"INSERT OR IGNORE INTO orders ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


class Order(msgspec.Struct, frozen=True):
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


def _row(fields: dict[bytes, bytes]) -> tuple[Any, ...]:
    f = {k.decode(): v.decode() for k, v in fields.items()}
    return (
        f["order_id"],
        f["room_id"],
        f["session_id"],
        f["user_id"],
        f["sku"],
        int(f["qty"]),
        int(f["unit_price"]),
        f["offer_id"] or None,
        f["pickup_code"],
        f["status"],
        int(f["created_at"]),
    )


class OrderStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()

    async def init_schema(self) -> None:
        await self._db.executescript(ORDERS_SCHEMA)
        await self._db.commit()

    async def insert(self, rows: list[tuple[Any, ...]]) -> None:
        async with self._lock:
            await self._db.executemany(_INSERT, rows)
            await self._db.commit()

    async def list(
        self, *, room_id: str | None = None, session_id: str | None = None, limit: int = 100
    ) -> list[Order]:
        where, params = [], []
        if room_id:
            where.append("room_id = ?")
            params.append(room_id)
        if session_id:
            where.append("session_id = ?")
            params.append(session_id)
        sql = f"SELECT {', '.join(COLUMNS)} FROM orders"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, order_id LIMIT ?"
        params.append(limit)
        async with self._db.execute(sql, params) as cur:
            return [Order(*row) for row in await cur.fetchall()]


class Persister:
    """Moves accepted orders from every room's outbox into SQLite."""

    def __init__(
        self,
        redis: Redis,
        store: OrderStore,
        *,
        batch: int = 500,
        claim_idle_ms: int = 5000,
        block_ms: int = 200,
    ) -> None:
        self.consumer = f"{socket.gethostname()}:{os.getpid()}"
        self._redis = redis
        self._store = store
        self._batch = batch
        self._claim_idle_ms = claim_idle_ms
        self._block_ms = block_ms
        self._grouped: set[str] = set()
        self.stored = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the current pass and return from run() (no cancellation mid-command)."""
        self._stopping.set()

    async def _streams(self) -> list[str]:
        rooms = [m.decode() for m in await self._redis.smembers(ROOMS_INDEX)]
        streams = []
        for room_id in rooms:
            key = RoomKeys.of(room_id).outbox
            if key not in self._grouped:
                try:
                    await self._redis.xgroup_create(key, OUTBOX_GROUP, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._grouped.add(key)
            streams.append(key)
        return streams

    async def _commit(self, entries: list[tuple[str, bytes, dict[bytes, bytes]]]) -> int:
        """Store entries [(stream, id, fields)] and only then acknowledge them."""
        if not entries:
            return 0
        await self._store.insert([_row(fields) for _, _, fields in entries])
        by_stream: dict[str, list[bytes]] = {}
        for stream, entry_id, _ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        for stream, ids in by_stream.items():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xack(stream, OUTBOX_GROUP, *ids)
                pipe.xdel(stream, *ids)
                await pipe.execute()
        self.stored += len(entries)
        return len(entries)

    async def claim_stale(self, streams: list[str]) -> int:
        """Take over entries that a dead (or stuck) consumer read but never acknowledged."""
        total = 0
        for stream in streams:
            start = "0-0"
            while True:
                next_start, claimed, *_ = await self._redis.xautoclaim(
                    stream,
                    OUTBOX_GROUP,
                    self.consumer,
                    self._claim_idle_ms,
                    start_id=start,
                    count=self._batch,
                )
                entries = [(stream, eid, fields) for eid, fields in claimed if fields]
                total += await self._commit(entries)
                if next_start in (b"0-0", "0-0"):
                    break
                start = next_start
        return total

    async def pass_once(self, *, block_ms: int | None = None) -> int:
        """Read and store one batch of new entries; returns how many were stored."""
        streams = await self._streams()
        if not streams:
            await asyncio.sleep((block_ms or self._block_ms) / 1000)
            return 0
        reply = await self._redis.xreadgroup(
            OUTBOX_GROUP,
            self.consumer,
            dict.fromkeys(streams, ">"),
            count=self._batch,
            block=self._block_ms if block_ms is None else block_ms,
        )
        entries = [
            (stream.decode(), eid, fields)
            for stream, items in (reply or [])
            for eid, fields in items
            if fields
        ]
        return await self._commit(entries)

    async def _pass_sharded(self, streams: list[str], block_ms: int | None) -> int:
        """On a Cluster one XREADGROUP cannot span shards: read each room's outbox."""
        replies = await asyncio.gather(
            *(
                self._redis.xreadgroup(OUTBOX_GROUP, self.consumer, {s: ">"}, count=self._batch)
                for s in streams
            )
        )
        entries = [
            (stream, eid, fields)
            for stream, reply in zip(streams, replies, strict=True)
            for _, items in (reply or [])
            for eid, fields in items
            if fields
        ]
        if not entries:
            await asyncio.sleep((self._block_ms if block_ms is None else block_ms) / 1000)
        return await self._commit(entries)

    async def drain(self) -> int:
        """Store everything in the outboxes now (used at shutdown and by tests)."""
        total = await self.claim_stale(await self._streams())
        while (n := await self.pass_once(block_ms=1)) > 0:
            total += n
        return total

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_claim = 0.0
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                if loop.time() - last_claim >= self._claim_idle_ms / 2000:
                    last_claim = loop.time()
                    await self.claim_stale(await self._streams())
                n = await self.pass_once()
                if n:
                    log.debug("orders stored", count=n)
                backoff = 0.1
            except (RedisError, OSError) as exc:
                log.warning("persister waiting for redis", error=str(exc), retry_in=backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, 2.0)
