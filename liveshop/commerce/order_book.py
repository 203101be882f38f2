"""The order book: orders after the tap, as they live in the engine.

Owns each order's hash, the buyer indexes, the due-time sorted set and the pickup-code
map of a room (keys in core.keys, layout in lua/_orders.lua), and calls the scripts that
move orders. Contract: every move is one script run that checks the order's current
state against `order_states` (the table is passed in as a spec, never copied), bumps
`version`, appends the move and its event to the room's outbox (the persister stores
both exactly once, in version order) and publishes the `order` message to the buyer's
sockets (at most once: a client that reconnects reads `my_orders`). Time-driven moves are
guarded sweeps any number of processes may run. Must not touch sockets or SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from liveshop.commerce.order_states import By, State, spec
from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, Rejected
from liveshop.core.keys import ROOM_ID, RoomKeys
from liveshop.engine.scripts import Call, Scripts, run_many

log = structlog.get_logger("liveshop.commerce.order_book")

S = State
UNDO_WINDOW_MS = 15 * 60 * 1000
CODE_KEPT_MS = 24 * 3600 * 1000  # a picked-up order's code answers already_verified this long
MAX_UNPAID = 3  # awaiting_payment orders per user per room
TXN_KEPT_S = 90 * 86400
VERIFY_MISSES, VERIFY_WINDOW_MS, VERIFY_LOCK_MS = 5, 10 * 60 * 1000, 15 * 60 * 1000
DEFAULT_PICKUP_DAYS = 3

# The specs the scripts take, made once from the table.
PAY_IN_TIME = spec(S.PAID, By.PAYMENT, sources=frozenset({S.AWAITING_PAYMENT}))
PAY_LATE = spec(S.PAID, By.PAYMENT, sources=frozenset({S.EXPIRED}))
EXPIRE = spec(S.EXPIRED, By.CLOCK)
UNCOLLECT = spec(S.UNCOLLECTED, By.CLOCK)
VERIFY = spec(S.PICKED_UP, By.VERIFY)
UNDO = spec(S.READY, By.UNDO_VERIFY)
GROUP_OK = spec(S.ACCEPTED, By.GROUP, sources=frozenset({S.PENDING_GROUP}))
GROUP_FAIL = spec(S.CANCELLED, By.GROUP)  # pending_group and paid members alike

_order = msgspec.json.Decoder(p.Order)


def order_call(room_id: str) -> tuple[list[str], list[str]]:
    """The KEYS and ARGV every order script starts with (lua/_orders.lua)."""
    k = RoomKeys.of(room_id)
    return (
        [k.stock, k.held, k.sold, k.seq, k.history, k.outbox, k.due, k.codes, k.refunds, k.room],
        [room_id, k.channel, k.prefix],
    )


class OrderIds:
    """A buy's order id: made from (user, request_id) with a keyed hash, so the order's
    key is also the request's idempotency record (one write fewer per purchase) and the
    id reveals neither. Opaque to clients; it carries its room after the dot, so a REST
    call or a payment notification naming only the order finds its keys directly."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"liveshop order ids", hashlib.sha256).digest()

    def for_request(self, room_id: str, user: str, request_id: str) -> str:
        mac = hmac.new(self._key, f"{len(user)}:{user}:{request_id}".encode(), hashlib.sha256)
        return f"o_{mac.hexdigest()[:18]}.{room_id}"


def order_key(room_id: str, order_id: str) -> str:
    """The order's key (lua/_orders.lua `order_key`)."""
    return f"{RoomKeys.of(room_id).prefix}order:{order_id}"


def room_of(order_id: str) -> str | None:
    room_id = order_id.rpartition(".")[2]
    return room_id if order_id.startswith("o_") and ROOM_ID.match(room_id) else None


class QrSigner:
    """The QR on the buyer's page: `<order_id>~<HMAC>`, so a scan needs no typing and a
    code cannot be guessed or made for an order one does not have."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"liveshop pickup qr", hashlib.sha256).digest()

    def sign(self, order_id: str) -> str:
        return f"{order_id}~{self._mac(order_id)}"

    def order_id(self, qr: str) -> str | None:
        """The order a QR text names, or None when it was not made here."""
        order_id, sep, mac = qr.strip().partition("~")
        if not sep or not hmac.compare_digest(mac, self._mac(order_id)):
            return None
        return order_id

    def _mac(self, order_id: str) -> str:
        return hmac.new(self._key, order_id.encode(), hashlib.sha256).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Verified:
    status: str  # verified | already_verified | not_found | not_ready | locked
    order: p.Order | None = None
    verified_at: int = 0
    verified_by: str = ""
    state: str = ""
    retry_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class Payment:
    repeat: bool
    body: bytes  # '{"status": "paid"|"refunded", "order": {...}}', the same on a repeat


def decode_order(json: bytes | str) -> p.Order:
    return _order.decode(json)


class OrderBook:
    def __init__(self, scripts: Scripts, redis: Any, qr: QrSigner) -> None:
        self._scripts = scripts
        self._redis = redis
        self.qr = qr

    async def move(
        self,
        order_id: str,
        target: State,
        by: By,
        actor: str,
        *,
        reason: str = "",
        buyer: str = "",
    ) -> p.Order:
        """Move an order by a person (staff, the buyer, an undo). Rejected names why:
        not_found (also for another buyer's order), illegal_transition, undo_expired."""
        room_id = _room(order_id)
        try:
            move_spec = spec(target, by)
        except ValueError:
            raise Rejected(
                ErrorCode.ILLEGAL_TRANSITION, f"{by.value} cannot move an order to {target.value}"
            ) from None
        method = {S.READY: "pickup", S.OUT_FOR_DELIVERY: "delivery"}.get(target, "")
        pickup_ms = 0
        if target is S.READY and by is By.STAFF:
            days = await self._redis.hget(RoomKeys.of(room_id).room, "pickup_days")
            pickup_ms = int(days or DEFAULT_PICKUP_DAYS) * 86_400_000
        undo_ms = UNDO_WINDOW_MS if by is By.UNDO_VERIFY else 0
        keys, args = order_call(room_id)
        reply = await self._scripts.orders_move(
            keys=keys,
            args=[
                *args,
                order_id,
                move_spec,
                by.value,
                actor,
                reason,
                buyer,
                method,
                pickup_ms,
                undo_ms,
            ],
        )
        status = reply[0]
        if status == b"ok":
            return decode_order(reply[1])
        if status == b"not_found":
            raise Rejected(ErrorCode.NOT_FOUND, f"no order {order_id!r}")
        if status == b"illegal":
            state = reply[1].decode()
            raise Rejected(
                ErrorCode.ILLEGAL_TRANSITION,
                f"an order {state} cannot move to {target.value} by {by.value}",
            )
        if status == b"method":
            raise Rejected(
                ErrorCode.ILLEGAL_TRANSITION,
                f"a {reply[1].decode()} order does not go {target.value}",
            )
        if status == b"undo_expired":
            raise Rejected(ErrorCode.UNDO_EXPIRED, "a verification can be undone for 15 min")
        raise RuntimeError(f"orders_move replied {reply!r}")

    async def verify(self, room_id: str, staff: str, *, code: str = "", qr: str = "") -> Verified:
        order_id = ""
        if qr:
            # A QR that is not ours, or another store's, counts as a miss like a code.
            signed = self.qr.order_id(qr)
            order_id = signed if signed is not None and room_of(signed) == room_id else "-"
        keys, args = order_call(room_id)
        reply = await self._scripts.orders_verify(
            keys=keys,
            args=[
                *args,
                code,
                order_id,
                staff,
                VERIFY_MISSES,
                VERIFY_WINDOW_MS,
                VERIFY_LOCK_MS,
                CODE_KEPT_MS,
                VERIFY,
            ],
        )
        status = reply[0].decode()
        if status == "verified":
            return Verified("verified", order=decode_order(reply[1]))
        if status == "already":
            return Verified(
                "already_verified", verified_at=int(reply[1]), verified_by=reply[2].decode()
            )
        if status == "not_ready":
            return Verified("not_ready", state=reply[1].decode())
        if status == "locked":
            return Verified("locked", retry_after_ms=int(reply[1]))
        return Verified("not_found")

    async def pay(self, order_id: str, txn_id: str, amount: int, paid_at: int) -> Payment:
        """Apply a notification whose signature was checked. Rejected(not_found,
        amount_mismatch) records nothing."""
        keys, args = order_call(_room(order_id))
        reply = await self._scripts.orders_pay(
            keys=keys,
            args=[
                *args,
                order_id,
                txn_id,
                amount,
                paid_at,
                PAY_IN_TIME,
                EXPIRE,
                PAY_LATE,
                TXN_KEPT_S,
                GROUP_OK,
                GROUP_FAIL,
            ],
        )
        status = reply[0]
        if status in (b"new", b"repeat"):
            return Payment(repeat=status == b"repeat", body=bytes(reply[1]))
        if status == b"amount_mismatch":
            raise Rejected(
                ErrorCode.AMOUNT_MISMATCH, f"amount {amount} is not the order total {int(reply[1])}"
            )
        raise Rejected(ErrorCode.NOT_FOUND, f"no order {order_id!r}")

    async def refund_state(self, order_id: str, reason: str, state: str) -> None:
        keys, args = order_call(_room(order_id))
        await self._scripts.orders_refund_state(keys=keys, args=[*args, order_id, reason, state])

    async def delivery_status(
        self, order_id: str, status: str, rank: int, target: State | None, actor: str
    ) -> p.Order | None:
        """A provider's callback; None when it was stale (late, repeated, out of order)."""
        keys, args = order_call(_room(order_id))
        move_spec = spec(target, By.DELIVERY) if target is not None else ""
        reply = await self._scripts.orders_delivery(
            keys=keys, args=[*args, order_id, status, rank, move_spec, actor]
        )
        if reply[0] == b"not_found":
            raise Rejected(ErrorCode.NOT_FOUND, f"no delivery order {order_id!r}")
        return decode_order(reply[1]) if reply[0] == b"ok" else None

    async def sweep(self, room_ids: list[str], *, limit: int = 250) -> int:
        """Make every clock move that is due in these rooms; returns how many moved.
        At most `limit` per room and script run (about 15 ms of the engine: purchases
        are not held up behind a long one); rooms with more are swept again at once."""
        moved = 0
        pending = room_ids
        while pending:
            calls: list[Call] = []
            for room_id in pending:
                keys, args = order_call(room_id)
                calls.append(
                    (
                        self._scripts.orders_sweep,
                        keys,
                        [*args, limit, EXPIRE, UNCOLLECT, GROUP_OK, GROUP_FAIL],
                    )
                )
            replies = await run_many(self._redis, calls)
            moved += sum(int(r[0]) for r in replies)
            pending = [room for room, r in zip(pending, replies, strict=True) if int(r[1]) > 0]
        return moved

    async def mine(self, room_id: str, user: str, limit: int = 20) -> list[p.Order]:
        """The buyer's latest orders in the room, newest first."""
        keys, args = order_call(room_id)
        reply = await self._scripts.orders_get(keys=keys, args=[*args, user, limit])
        return [decode_order(json) for json, _ in reply]

    async def get(self, order_id: str) -> tuple[p.Order, str] | None:
        """(order, buyer) or None."""
        keys, args = order_call(_room(order_id))
        reply = await self._scripts.orders_get(keys=keys, args=[*args, "", 1, order_id])
        if not reply:
            return None
        json, user = reply[0]
        return decode_order(json), user.decode()


def _room(order_id: str) -> str:
    room_id = room_of(order_id)
    if room_id is None:
        raise Rejected(ErrorCode.NOT_FOUND, f"no order {order_id!r}")
    return room_id


class DueSweeper:
    """Every process sweeps every room's due moves every `interval_s`: the scripts are
    guarded, so sweepers never collide, and a restart finds what is due in the engine.
    `also`: more sweeps of the same shape (rooms in, moves made out), e.g. the campaign
    packs' queued offers."""

    def __init__(
        self,
        book: OrderBook,
        room_ids: Callable[[], Awaitable[list[str]]],
        *,
        interval_s: float = 0.5,
        also: Sequence[Callable[[list[str]], Awaitable[int]]] = (),
    ) -> None:
        self._sweeps = [book.sweep, *also]
        self._room_ids = room_ids
        self._interval_s = interval_s
        self.moved = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                room_ids = await self._room_ids()
            except Exception as exc:  # the engine away: the next pass catches up
                log.warning("due sweep failed; retrying", error=repr(exc))
                room_ids = []
            for sweep in self._sweeps:
                try:
                    self.moved += await sweep(room_ids)
                except Exception as exc:  # one sweep failing does not hold up the others
                    log.warning("due sweep failed; retrying", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)
