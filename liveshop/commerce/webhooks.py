"""Webhooks out: `live.started` (with the reserved users), `live.ended`, `order.changed`
(every state move), `group.closed` POSTed as JSON `{"event_id", "event", "room", "at",
"data"}` to `LIVESHOP_WEBHOOK_URL`, signed like payment notifications (`X-Liveshop-Signature`:
hex HMAC-SHA256 of the body with `LIVESHOP_WEBHOOK_SECRET`).

Owns the `webhook_outbox` table. An event is a row first (its `event_id` is the primary
key, so writing it twice is one event: an order move's id is `order.changed:<order>:
<version>`; order moves, going live, ending and a room group's close are entries of the
room's outbox, and the persister writes their events before it acks them, so a crash
only repeats the write); every process's deliverer claims due rows with a lease (an UPDATE
that only one process wins), POSTs, and marks a 2xx delivered or retries with backoff
(`webhook_retry_ms`, doubled per attempt, at most 10 minutes) for 24 hours; up to
IN_FLIGHT POSTs at once, so events may arrive out of order. Rows delivered or given up
a week ago are pruned. Delivery is at least once: receivers dedupe on `event_id`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Sequence

import httpx
import msgspec
import structlog

from liveshop.engine.database import Database, Migration

log = structlog.get_logger("liveshop.commerce.webhooks")

MIGRATIONS = [
    Migration(
        "webhooks",
        1,
        """
        CREATE TABLE IF NOT EXISTS webhook_outbox (
            event_id     TEXT PRIMARY KEY,
            event        TEXT NOT NULL,
            room_id      TEXT NOT NULL,
            body         TEXT NOT NULL,
            created_at   BIGINT NOT NULL,
            next_at      BIGINT NOT NULL,
            attempts     INTEGER NOT NULL DEFAULT 0,
            delivered_at BIGINT,
            last_error   TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (delivered_at, next_at)
        """,
    )
]
GIVE_UP_MS = 24 * 3600_000
MAX_DELAY_MS = 600_000
LEASE_MS = 30_000  # a claimed row is the claimer's this long (then anyone's again)
BATCH = 50
IN_FLIGHT = 8  # POSTs at once per process
KEEP_MS = 7 * 24 * 3600_000  # a delivered (or given-up) event stays this long, for support
PRUNE_EVERY_S = 3600.0
SIGNATURE_HEADER = "X-Liveshop-Signature"

Event = tuple[str, str, str, int, object]  # event_id, event, room, at (ms), data


class Envelope(msgspec.Struct, frozen=True):
    event_id: str
    event: str
    room: str
    at: int
    data: object


def signature(key: bytes, body: bytes) -> str:
    """What `X-Liveshop-Signature` carries: hex HMAC-SHA256 of the body."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def backoff_ms(attempts: int, first_ms: int) -> int:
    """The delay before the next try after `attempts` failed ones."""
    return int(min(first_ms * 2 ** max(attempts - 1, 0), MAX_DELAY_MS))


class Webhooks:
    def __init__(self, db: Database, url: str, secret: str, *, retry_ms: int = 1000) -> None:
        self._db = db
        self.url = url
        self._key = secret.encode()
        self._retry_ms = retry_ms

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    async def init_schema(self) -> None:
        await self._db.migrate(MIGRATIONS)

    async def enqueue(self, events: Sequence[Event]) -> None:
        """Write events (a repeat of an event_id is the same event: not written again)."""
        if not self.enabled or not events:
            return
        now = _now_ms()
        rows = [
            (
                event_id,
                event,
                room,
                msgspec.json.encode(Envelope(event_id, event, room, at, data)).decode(),
                now,
                now,
            )
            for event_id, event, room, at, data in events
        ]
        await self._db.execute_many(
            "INSERT INTO webhook_outbox (event_id, event, room_id, body, created_at, next_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
            rows,
        )

    async def deliver_due(self, client: httpx.AsyncClient) -> tuple[int, int]:
        """Try every due event once, up to IN_FLIGHT at a time (a slow receiver does not
        hold the rest back); returns (tried, delivered)."""
        now = _now_ms()
        due = await self._db.fetch(
            "SELECT event_id, body, attempts, next_at FROM webhook_outbox "
            "WHERE delivered_at IS NULL AND next_at <= $1 AND created_at >= $2 "
            "ORDER BY next_at LIMIT $3",
            (now, now - GIVE_UP_MS, BATCH),
        )
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(row: Sequence[object]) -> bool:
            async with gate:
                return await self._deliver(client, row, now)

        done = await asyncio.gather(*(one(row) for row in due))
        return len(due), sum(done)

    async def _deliver(self, client: httpx.AsyncClient, row: Sequence[object], now: int) -> bool:
        event_id, body, raw_attempts, next_at = row
        attempts = int(str(raw_attempts))
        claimed = await self._db.fetch_write(
            "UPDATE webhook_outbox SET next_at = $1 WHERE event_id = $2 AND next_at = $3 "
            "AND delivered_at IS NULL RETURNING event_id",
            (now + LEASE_MS, event_id, next_at),
        )
        if not claimed:
            return False  # another process has it
        data = str(body).encode()
        error = ""
        try:
            reply = await client.post(
                self.url,
                content=data,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: signature(self._key, data),
                },
            )
            if 200 <= reply.status_code < 300:
                await self._db.execute(
                    "UPDATE webhook_outbox SET delivered_at = $1, attempts = $2 "
                    "WHERE event_id = $3",
                    (_now_ms(), attempts + 1, event_id),
                )
                return True
            error = f"HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        tries = attempts + 1
        await self._db.execute(
            "UPDATE webhook_outbox SET attempts = $1, next_at = $2, last_error = $3 "
            "WHERE event_id = $4",
            (tries, _now_ms() + backoff_ms(tries, self._retry_ms), error, event_id),
        )
        log.info("webhook retry", event_id=event_id, attempts=tries, error=error)
        return False

    async def prune(self, now: int | None = None) -> None:
        """Events delivered, or given up, more than KEEP_MS ago leave the table."""
        cutoff = (now if now is not None else _now_ms()) - KEEP_MS
        await self._db.execute(
            "DELETE FROM webhook_outbox WHERE (delivered_at IS NOT NULL AND delivered_at < $1) "
            "OR (delivered_at IS NULL AND created_at < $2)",
            (cutoff, cutoff - GIVE_UP_MS),
        )

    async def run(self, interval_s: float = 0.5) -> None:
        """Every process: deliver due events until cancelled (supervised by the app); a
        full batch is followed by the next at once, and old rows are pruned hourly."""
        pruned_at = 0.0
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                if time.monotonic() - pruned_at >= PRUNE_EVERY_S:
                    pruned_at = time.monotonic()
                    await self.prune()
                tried, _ = await self.deliver_due(client)
                if tried < BATCH:
                    await asyncio.sleep(interval_s)


def order_events(events: Sequence[Sequence[object]]) -> list[Event]:
    """`order.changed` events of `order_events` rows (orders.EVENT_COLUMNS order)."""
    out: list[Event] = []
    for order_id, version, room_id, from_state, to_state, by, actor, reason, at in events:
        data = {
            "order_id": order_id,
            "version": version,
            "from": from_state,
            "to": to_state,
            "by": by,
            "actor": actor,
            "reason": reason,
        }
        event_id = f"order.changed:{order_id}:{version}"
        out.append((event_id, "order.changed", str(room_id), int(str(at)), data))
    return out


def group_closed(room_id: str, group_id: str, at: int, data: dict[str, object]) -> Event:
    """`group.closed`: a group stopped taking joins (succeeded and full or at its deadline,
    failed, cancelled), `data` the group as its `group` message shows it, with `members`
    (users with units in it) and `closed_at`. A deal across rooms has room "" and its
    `rooms`."""
    return (f"group.closed:{room_id}:{group_id}", "group.closed", room_id, at, data)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
