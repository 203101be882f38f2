"""Reconciliation: per room and SKU, units the engine sold vs units in the database.

Owns the `ls:reconcile` hash (room -> its latest figures, for the admin page, the
console and other processes) and the alarm rules; reads the engine through
`orders_reconcile.lua` and the database through `OrderStore`. Must not write orders.
Invariant checked: sold (engine) = stored (database) + unstored (still in the outbox).

Every process runs a Reconciler; one at a time judges (a lease in Redis, renewed each
check, taken over by another process within `3 * interval_s` of the judge's death), the
others read what it wrote, so every process's /readyz shows the same alarms.

Two alarms, each raised only once it has lasted `alarm_after_s` (a check reads the
engine and the database one after the other, so a figure can be off for one check):
- `mismatch`: sold - stored - unstored != 0: an order lost or stored twice.
- `lagging`: the oldest unstored order is older than `alarm_after_s`: orders are not
  reaching the database (persister down, database refusing writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

import msgspec
import structlog
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from liveshop.commerce.orders import OrderStore
from liveshop.core import metrics
from liveshop.core.keys import RECONCILE, RECONCILE_LEASE, ROOMS_INDEX, RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.scripts import Call, Scripts, run_many

log = structlog.get_logger("liveshop.commerce.reconcile")

OUTBOX_READ_MAX = 10_000  # entries summed per check; beyond it the outbox is "lagging"


class RoomFigures(msgspec.Struct, frozen=True, omit_defaults=True):
    """What `ls:reconcile` holds for one room (JSON)."""

    delta: int  # units sold by the engine and not (yet) in the database
    unexplained: int  # delta minus the units still in the outbox: 0 when all is well
    unstored: int  # units in the outbox
    oldest_ms: int  # age of the oldest unstored order
    since_ms: int  # when `delta` last went from 0 to not 0 (0: it is 0)
    checked_at: int
    alarm: str = ""  # "", "mismatch" or "lagging"
    skus: dict[str, int] = {}  # sku -> unexplained units, only the non-zero ones


_encode = msgspec.json.Encoder().encode
decode_figures = msgspec.json.Decoder(RoomFigures).decode


def _pairs(flat: list[bytes]) -> dict[str, int]:
    return {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}


def _stream_ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


class Reconciler:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        store: OrderStore,
        *,
        interval_s: float = 2.0,
        alarm_after_s: float = 10.0,
        owner: str = "",
    ) -> None:
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._redis = redis
        self._scripts = scripts
        self._store = store
        self._interval_s = interval_s
        self._alarm_after_ms = int(alarm_after_s * 1000)
        self._off_since: dict[tuple[str, str], int] = {}  # (room, kind) -> first seen
        self.figures: dict[str, RoomFigures] = {}
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def alarms(self) -> dict[str, str]:
        """room -> alarm, for the rooms that have one."""
        return {room: f.alarm for room, f in self.figures.items() if f.alarm}

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                if await self._hold_lease():
                    await self.check()
                else:
                    await self.follow()
            except Exception as exc:  # never die: the supervisor would only restart us
                log.warning("reconciliation check failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)

    async def _hold_lease(self) -> bool:
        ttl_ms = int(self._interval_s * 3000)
        if await self._redis.set(RECONCILE_LEASE, self.owner, nx=True, px=ttl_ms):
            return True
        if await self._redis.get(RECONCILE_LEASE) == self.owner.encode():
            # Renewed after a GET: at worst two judges for one check, which is harmless.
            await self._redis.pexpire(RECONCILE_LEASE, ttl_ms)
            return True
        return False

    async def follow(self) -> None:
        """Take the judge's figures (another process holds the lease)."""
        raw = await self._redis.hgetall(RECONCILE)
        self.figures = {as_text(k): decode_figures(v) for k, v in raw.items()}
        self._export()

    async def check(self) -> dict[str, RoomFigures]:
        rooms = sorted(as_text(m) for m in await self._redis.smembers(ROOMS_INDEX))
        calls: list[Call] = []
        for room_id in rooms:
            keys = RoomKeys.of(room_id)
            calls.append(
                (self._scripts.orders_reconcile, [keys.sold, keys.outbox], [OUTBOX_READ_MAX])
            )
        replies = await run_many(self._redis, calls)
        now = int(time.time() * 1000)
        changed: dict[FieldT, EncodableT] = {}  # redis-py's own types: Mapping is invariant
        for room_id, (sold_flat, unstored_flat, _, oldest_id, complete) in zip(
            rooms, replies, strict=True
        ):
            # The database is read after the engine: an order stored in between is in
            # both, one that is sold in between in neither; either lasts one check.
            stored = await self._store.units_sold(room_id)
            figures = self._judge(
                room_id,
                _pairs(sold_flat),
                _pairs(unstored_flat),
                stored,
                now - _stream_ms(oldest_id) if oldest_id else 0,
                complete=bool(complete),
                now=now,
            )
            if self.figures.get(room_id) != figures:
                changed[room_id] = _encode(figures)
            self.figures[room_id] = figures
        if changed:
            await self._redis.hset(RECONCILE, mapping=changed)
        self._export()
        return self.figures

    def _export(self) -> None:
        figures = self.figures.values()
        metrics.outbox_entries.set(sum(f.unstored for f in figures))
        metrics.outbox_oldest.set(max((f.oldest_ms for f in figures), default=0) / 1000)
        metrics.reconcile_delta.set(sum(abs(f.unexplained) for f in figures))
        for kind in ("lagging", "mismatch"):
            metrics.reconcile_alarms.labels(kind).set(sum(f.alarm == kind for f in figures))

    def _judge(
        self,
        room_id: str,
        sold: dict[str, int],
        unstored: dict[str, int],
        stored: dict[str, int],
        oldest_ms: int,
        *,
        complete: bool,
        now: int,
    ) -> RoomFigures:
        skus = sold.keys() | stored.keys() | unstored.keys()
        delta = {s: sold.get(s, 0) - stored.get(s, 0) for s in skus}
        off = {s: delta[s] - unstored.get(s, 0) for s in skus}
        off = {s: n for s, n in off.items() if n and (complete or n < 0)}
        total_delta = sum(delta.values())
        since = self._since(room_id, "delta", total_delta != 0, now)
        mismatch = self._since(room_id, "mismatch", bool(off), now)
        lagging = self._since(room_id, "lagging", oldest_ms > self._alarm_after_ms, now)
        alarm = ""
        if mismatch and now - mismatch >= self._alarm_after_ms:
            alarm = "mismatch"
        elif lagging:
            alarm = "lagging"
        previous = self.figures.get(room_id)
        if alarm and (previous is None or previous.alarm != alarm):
            log.warning(
                "reconciliation alarm",
                room=room_id,
                alarm=alarm,
                delta=total_delta,
                unexplained=off,
                oldest_ms=oldest_ms,
            )
        elif not alarm and previous is not None and previous.alarm:
            log.info("reconciliation cleared", room=room_id, was=previous.alarm)
        return RoomFigures(
            delta=total_delta,
            unexplained=sum(off.values()),
            unstored=sum(unstored.values()),
            oldest_ms=oldest_ms,
            since_ms=since,
            checked_at=now,
            alarm=alarm,
            skus=off,
        )

    def _since(self, room_id: str, kind: str, on: bool, now: int) -> int:
        """When the condition began (0: it does not hold now)."""
        key = (room_id, kind)
        if not on:
            self._off_since.pop(key, None)
            return 0
        return self._off_since.setdefault(key, now)


async def read_figures(redis: Redis, room_id: str) -> RoomFigures | None:
    """A room's latest figures, as any process's reconciler wrote them."""
    raw = await redis.hget(RECONCILE, room_id)
    return decode_figures(raw) if raw else None
