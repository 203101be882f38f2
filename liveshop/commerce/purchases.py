"""Purchases: the per-room purchase gate and the buy orchestration behind `buy`.

Owns what this process knows between the engine's answers: units in flight per SKU,
the taps waiting for them, and the stock the room stream last said. The script stays
the only judge: the gate never accepts, it only holds a tap back or, when the room
knows the SKU is sold out, answers `sold_out` through `Inventory.reject_sold_out`
(recorded, so idempotency holds). Must not touch sockets: `buy()` returns the wire answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import structlog

from liveshop.commerce.delivery import area_of
from liveshop.commerce.inventory import Inventory
from liveshop.core import metrics
from liveshop.core import protocol as p
from liveshop.engine.connections import AnyRedis

log = structlog.get_logger("liveshop.commerce.purchases")


class PurchaseGate:
    """One room's gate. A flash sale brings ten taps per unit within a second; once the
    purchases already sent to the engine would sell everything this room knows is left,
    the next ones wait (in order) for those answers instead of running the script only
    to hear `sold_out`."""

    __slots__ = ("_queued", "in_flight", "last_seq", "stock")

    def __init__(self) -> None:
        self.stock: dict[str, int] = {}  # latest `left` per SKU seen on the room stream
        self.last_seq = 0  # seq of the newest stock figure taken
        self.in_flight: dict[str, int] = {}  # units sent to the engine, not answered yet
        self._queued: dict[str, deque[tuple[int, asyncio.Future[bool]]]] = {}

    def seed(self, seq: int, stock: dict[str, int]) -> None:
        """Take a snapshot's figures at `seq` unless the stream has said newer ones."""
        if seq >= self.last_seq:
            self.stock.update(stock)
            self.last_seq = seq

    def seen(self, sku: str, left: int, seq: int) -> None:
        """A `stock` message of the room stream, in seq order."""
        self.stock[sku] = left
        self.last_seq = max(self.last_seq, seq)
        if sku in self._queued:
            self._admit_queued(sku)

    def admit_now(self, sku: str, qty: int) -> bool | None:
        """True: send this purchase to the engine (release() it after); False: the room
        knows fewer than `qty` units are left; None: wait with wait_admit(). Not a
        coroutine: every tap of a flash sale asks."""
        verdict = None if self._queued.get(sku) else self._verdict(sku, qty)
        if verdict is True:
            self.in_flight[sku] = self.in_flight.get(sku, 0) + qty
        return verdict

    async def admit(self, sku: str, qty: int) -> bool:
        verdict = self.admit_now(sku, qty)
        return verdict if verdict is not None else await self.wait_admit(sku, qty)

    async def wait_admit(self, sku: str, qty: int) -> bool:
        """Wait in line for the answers in flight; for a tap admit_now() said None to."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        queue = self._queued.get(sku)
        if queue is None:
            queue = self._queued[sku] = deque()
        queue.append((qty, waiter))
        try:
            return await waiter  # _admit_queued reserved the units when it said True
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release(sku, qty)
            raise

    def release(self, sku: str, qty: int) -> None:
        """The engine answered a purchase admit() let through (or the call failed)."""
        left = self.in_flight.get(sku, 0) - qty
        if left > 0:
            self.in_flight[sku] = left
        else:
            self.in_flight.pop(sku, None)
        if sku in self._queued:
            self._admit_queued(sku)

    @property
    def idle(self) -> bool:
        return not self.in_flight and not self._queued

    def _verdict(self, sku: str, qty: int) -> bool | None:
        left = self.stock.get(sku)
        if left is None:
            return True  # nothing known: the engine decides
        if left < qty:
            return False
        return True if self.in_flight.get(sku, 0) + qty <= left else None

    def _admit_queued(self, sku: str) -> None:
        queue = self._queued[sku]
        while queue:
            qty, waiter = queue[0]
            if waiter.done():  # its buyer went away
                queue.popleft()
                continue
            verdict = self._verdict(sku, qty)
            if verdict is None:
                break
            queue.popleft()
            if verdict:
                self.in_flight[sku] = self.in_flight.get(sku, 0) + qty
            waiter.set_result(verdict)
        if not queue:
            del self._queued[sku]


class Purchases:
    """`buy` for every room of this process: gate, script or recorded sold-out, log."""

    def __init__(self, inventory: Inventory, redis: AnyRedis | None = None) -> None:
        self._inventory = inventory
        self._redis = redis
        self._gates: dict[str, PurchaseGate] = {}
        # Sold-out taps answered without the script, counted per (room, sku) and logged
        # once a second: a flash sale brings thousands a second, each alike.
        self._sold_out_taps: dict[tuple[str, str], int] = {}
        self._sold_out_timer: asyncio.TimerHandle | None = None

    def gate(self, room_id: str) -> PurchaseGate:
        gate = self._gates.get(room_id)
        if gate is None:
            gate = self._gates[room_id] = PurchaseGate()
        return gate

    # Wired by the app to the realtime hub's room stream.
    def on_stock(self, room_id: str, sku: str, left: int, seq: int) -> None:
        gate = self._gates.get(room_id)
        if gate is not None:
            gate.seen(sku, left, seq)

    def on_room_closed(self, room_id: str) -> None:
        """The last local socket left the room: forget its gate once nothing waits."""
        gate = self._gates.get(room_id)
        if gate is not None and gate.idle:
            del self._gates[room_id]

    async def buy(self, room_id: str, user: str, msg: p.Buy) -> p.OrderAck:
        started = time.perf_counter()
        delivery = msg.fulfilment if isinstance(msg.fulfilment, p.DeliveryIn) else None
        if delivery is not None and self._redis is not None:
            area = await area_of(self._redis, room_id)
            if not area.covers(delivery.lat, delivery.lng):
                outcome = await self._inventory.reject_sold_out(
                    room_id, user, msg.request_id, msg.sku, msg.qty, reason="out_of_range"
                )
                return outcome.ack(msg.request_id)
        gate = self.gate(room_id)
        admitted = gate.admit_now(msg.sku, msg.qty)
        if admitted is None:
            admitted = await gate.wait_admit(msg.sku, msg.qty)
        if not admitted:
            # The room already knows this SKU is sold out: answer without the script
            # (recorded, and a request answered before gets its first answer).
            outcome = await self._inventory.reject_sold_out(
                room_id, user, msg.request_id, msg.sku, msg.qty
            )
        else:
            try:
                outcome = await self._inventory.buy(
                    room_id, user, msg.request_id, msg.sku, msg.qty, msg.offer_id, delivery
                )
            finally:
                gate.release(msg.sku, msg.qty)
        ack = outcome.ack(msg.request_id)
        metrics.purchase_seconds.observe(time.perf_counter() - started)
        metrics.count(metrics.purchases, ack.status, ack.reason or "none")
        if not admitted and not outcome.repeat:
            self._count_sold_out(room_id, msg.sku)
        else:
            _log_purchase(room_id, user, msg, ack, started, repeat=outcome.repeat)
        return ack

    def _count_sold_out(self, room_id: str, sku: str) -> None:
        key = (room_id, sku)
        self._sold_out_taps[key] = self._sold_out_taps.get(key, 0) + 1
        if self._sold_out_timer is None:
            loop = asyncio.get_running_loop()
            self._sold_out_timer = loop.call_later(1.0, self.log_sold_out)

    def log_sold_out(self) -> None:
        """Log the sold-out taps counted so far (once a second, and at shutdown)."""
        if self._sold_out_timer is not None:
            self._sold_out_timer.cancel()
            self._sold_out_timer = None
        taps, self._sold_out_taps = self._sold_out_taps, {}
        for (room_id, sku), count in taps.items():
            log.info("sold-out taps answered", room=room_id, sku=sku, taps=count)


def _log_purchase(
    room_id: str, user: str, msg: p.Buy, ack: p.OrderAck, started: float, *, repeat: bool
) -> None:
    log.info(
        "purchase",
        room=room_id,
        user=user,
        sku=msg.sku,
        qty=msg.qty,
        result=ack.status,
        reason=ack.reason,
        order_id=ack.order_id,
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        repeat=repeat,
    )
