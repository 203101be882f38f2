"""Refunds as a ledger: one row per (order, reason), `pending -> done | failed`.

Owns the `refunds` table and the loop that carries refunds out. A refund is created in
the engine by the script that made the move (at most once per (order, reason): a hash
field set only if absent) and reaches this table through the outbox (the persister
inserts it ON CONFLICT DO NOTHING), so it is never created twice and never lost. Any
process may run the loop: a row is claimed for a while with one UPDATE … RETURNING, the
provider is called with the refund's own key (so a repeated call after a crash refunds
once at the provider), the outcome goes to the order in the engine first, then to the
row. A transient failure is retried with backoff under the same key; after
`max_attempts` the row is `failed`, visible on the store page, never re-keyed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from liveshop.engine.database import Database, Migration

log = structlog.get_logger("liveshop.commerce.refunds")

MIGRATIONS = [
    Migration(
        "refunds",
        1,
        """
        CREATE TABLE IF NOT EXISTS refunds (
            order_id     TEXT NOT NULL,
            reason       TEXT NOT NULL,
            room_id      TEXT NOT NULL,
            user_id      TEXT NOT NULL,
            amount       BIGINT NOT NULL,
            txn_id       TEXT NOT NULL DEFAULT '',
            state        TEXT NOT NULL DEFAULT 'pending',
            attempts     INTEGER NOT NULL DEFAULT 0,
            next_at      BIGINT NOT NULL DEFAULT 0,
            claimed_by   TEXT NOT NULL DEFAULT '',
            claim_until  BIGINT NOT NULL DEFAULT 0,
            last_error   TEXT NOT NULL DEFAULT '',
            created_at   BIGINT NOT NULL,
            updated_at   BIGINT NOT NULL,
            PRIMARY KEY (order_id, reason)
        );
        CREATE INDEX IF NOT EXISTS refunds_due ON refunds (state, next_at);
        CREATE INDEX IF NOT EXISTS refunds_room ON refunds (room_id, created_at)
        """,
    ),
]

RefundState = Literal["pending", "done", "failed"]
# (order_id, reason, room_id, user_id, amount, txn_id, created_at), from an outbox entry
NewRefund = tuple[str, str, str, str, int, str, int]


@dataclass(frozen=True, slots=True)
class Refund:
    order_id: str
    reason: str
    room_id: str
    user_id: str
    amount: int
    txn_id: str
    state: str
    attempts: int
    last_error: str
    created_at: int
    updated_at: int

    @property
    def key(self) -> str:
        """The provider's idempotency key: one refund per (order, reason), whatever retries."""
        return f"{self.order_id}|{self.reason}"


_COLUMNS = (
    "order_id, reason, room_id, user_id, amount, txn_id, state, attempts, last_error, "
    "created_at, updated_at"
)


class RefundProvider(Protocol):
    """What pays money back (a payment provider's refund API). `refund` returns "done"
    or "failed" (final), or raises for a transient failure (retried with backoff). It
    must treat `refund.key` as an idempotency key: a second call with a key it has
    seen returns that first outcome and moves no money."""

    async def refund(self, refund: Refund) -> Literal["done", "failed"]: ...


class DemoRefundProvider:
    """The demo's stand-in for a provider: answers every refund `done`, once per key."""

    def __init__(self) -> None:
        self.refunded: dict[str, int] = {}  # key -> amount (what a provider would have paid)

    async def refund(self, refund: Refund) -> Literal["done", "failed"]:
        self.refunded.setdefault(refund.key, refund.amount)
        return "done"


class RefundLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def init_schema(self) -> None:
        await self._db.migrate(MIGRATIONS)

    async def record(self, rows: Sequence[NewRefund]) -> None:
        """Insert refunds from the outbox; one already there changes nothing."""
        await self._db.execute_many(
            "INSERT INTO refunds (order_id, reason, room_id, user_id, amount, txn_id, "
            "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) "
            "ON CONFLICT (order_id, reason) DO NOTHING",
            rows,
        )

    async def recent(self, *, room_id: str | None = None, limit: int = 200) -> list[Refund]:
        if room_id is None:
            rows = await self._db.fetch(
                f"SELECT {_COLUMNS} FROM refunds ORDER BY created_at DESC LIMIT $1", (limit,)
            )
        else:
            rows = await self._db.fetch(
                f"SELECT {_COLUMNS} FROM refunds WHERE room_id = $1 "
                "ORDER BY created_at DESC LIMIT $2",
                (room_id, limit),
            )
        return [_refund(row) for row in rows]

    async def claim(self, owner: str, now: int, lease_ms: int, limit: int = 20) -> list[Refund]:
        """Take due pending refunds for `lease_ms`: the rows this call (and no other)
        claimed. An attempt is counted at the claim, so a crash mid-call backs off too."""
        due = await self._db.fetch(
            "SELECT order_id, reason FROM refunds WHERE state = 'pending' AND next_at <= $1 "
            "AND claim_until <= $1 ORDER BY next_at LIMIT $2",
            (now, limit),
        )
        taken = []
        for order_id, reason in due:
            rows = await self._db.fetch_write(
                "UPDATE refunds SET claimed_by = $1, claim_until = $2, attempts = attempts + 1 "
                "WHERE order_id = $3 AND reason = $4 AND state = 'pending' "
                f"AND claim_until <= $5 RETURNING {_COLUMNS}",
                (owner, now + lease_ms, order_id, reason, now),
            )
            taken += [_refund(row) for row in rows]
        return taken

    async def settle(
        self, refund: Refund, state: RefundState, now: int, error: str = "", retry_in_ms: int = 0
    ) -> None:
        """The outcome of an attempt; a `pending` one is tried again in `retry_in_ms`."""
        await self._db.execute(
            "UPDATE refunds SET state = $1, next_at = $2, claim_until = 0, last_error = $3, "
            "updated_at = $4 WHERE order_id = $5 AND reason = $6 AND state = 'pending'",
            (state, now + retry_in_ms, error[:300], now, refund.order_id, refund.reason),
        )


def _refund(row: Sequence[object]) -> Refund:
    return Refund(
        order_id=str(row[0]),
        reason=str(row[1]),
        room_id=str(row[2]),
        user_id=str(row[3]),
        amount=int(str(row[4])),
        txn_id=str(row[5]),
        state=str(row[6]),
        attempts=int(str(row[7])),
        last_error=str(row[8]),
        created_at=int(str(row[9])),
        updated_at=int(str(row[10])),
    )


class OrderRefundState(Protocol):
    """Where an outcome is shown on the order (order_book.OrderBook.refund_state)."""

    async def refund_state(self, order_id: str, reason: str, state: str) -> None: ...


class Refunder:
    """The loop that carries refunds out; every process runs one."""

    def __init__(
        self,
        ledger: RefundLedger,
        provider: RefundProvider,
        orders: OrderRefundState,
        *,
        interval_s: float = 0.5,
        lease_ms: int = 30_000,
        max_attempts: int = 8,
        backoff_ms: int = 1000,
    ) -> None:
        self._backoff_ms = backoff_ms  # doubled per attempt, at most 10 min
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._ledger = ledger
        self._provider = provider
        self._orders = orders
        self._interval_s = interval_s
        self._lease_ms = lease_ms
        self._max_attempts = max_attempts
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> int:
        """Attempt every due refund once; returns how many were attempted."""
        taken = await self._ledger.claim(self.owner, _now_ms(), self._lease_ms)
        for refund in taken:
            await self._attempt(refund)
        return len(taken)

    async def _attempt(self, refund: Refund) -> None:
        try:
            outcome: RefundState = await self._provider.refund(refund)
            error = ""
        except Exception as exc:  # any provider failure is retried, never lost
            error = repr(exc)
            outcome = "failed" if refund.attempts >= self._max_attempts else "pending"
            log.warning(
                "refund attempt failed",
                key=refund.key,
                attempts=refund.attempts,
                error=error,
                final=outcome == "failed",
            )
        if outcome != "pending":
            await self._orders.refund_state(refund.order_id, refund.reason, outcome)
            log.info("refund settled", key=refund.key, amount=refund.amount, state=outcome)
        retry_in_ms = min(self._backoff_ms * 2 ** min(refund.attempts - 1, 20), 600_000)
        await self._ledger.settle(refund, outcome, _now_ms(), error, retry_in_ms)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                if await self.run_once():
                    continue
            except Exception as exc:
                log.warning("refund pass failed; retrying", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
