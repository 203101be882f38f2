"""Inventory: stock per SKU and the purchase decision.

Owns the stock, price, stocked and sold hashes, the idempotency records and the
outbox stream's writes. Contract: a purchase is one script run (checks, decrement,
order appended to the outbox, room message) and so is atomic; an `accepted` answer
exists only after the order is in the outbox; units accepted never exceed units
stocked; a repeat of (user, request_id) returns the first answer and changes nothing.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import NamedTuple

import msgspec
from redis.asyncio import Redis

from liveshop.core import protocol as p
from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import is_cluster
from liveshop.engine.scripts import ScriptBatcher, Scripts


class PurchaseAnswer(msgspec.Struct, frozen=True):
    """The script's answer record (short names: it is stored per request for 24 h)."""

    s: str  # accepted | rejected
    r: str  # reason when rejected
    o: str  # order id
    p: str  # pickup code
    u: int  # unit price
    k: str  # sku
    q: int  # qty


_answer_decoder = msgspec.json.Decoder(PurchaseAnswer)
_answer_encoder = msgspec.json.Encoder()


class PurchaseOutcome(NamedTuple):  # a tuple: one is made per tap
    answer: PurchaseAnswer
    repeat: bool  # True when this (user, request_id) had been answered before

    @property
    def accepted(self) -> bool:
        return self.answer.s == "accepted"

    def ack(self, request_id: str) -> p.OrderAck:
        a = self.answer
        if a.s == "accepted":
            return p.OrderAck(
                request_id=request_id,
                status="accepted",
                sku=a.k,
                qty=a.q,
                order_id=a.o,
                pickup_code=a.p,
                unit_price=a.u,
            )
        return p.OrderAck(request_id=request_id, status="rejected", sku=a.k, qty=a.q, reason=a.r)


def buy_call(
    room_id: str,
    user: str,
    request_id: str,
    sku: str,
    qty: int | str,
    offer_id: str,
    order_id: str,
    pickup_code: str,
    ttl_s: int | str,
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of `inventory_buy.lua` (also used by the raw-Lua baseline)."""
    keys = RoomKeys.of(room_id)
    return (
        [
            keys.room,
            keys.price,
            keys.stock,
            keys.sold,
            keys.idempotency(user, request_id),
            keys.outbox,
            keys.seq,
            keys.history,
            keys.stats,
            keys.buyers,
            keys.offers,
        ],
        [
            room_id,
            user,
            request_id,
            sku,
            qty,
            offer_id,
            order_id,
            pickup_code,
            ttl_s,
            keys.channel,
            keys.offer(""),
        ],
    )


def new_order_id() -> str:
    return "o_" + secrets.token_urlsafe(12)


def new_pickup_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


class RestockRefused(Exception):
    def __init__(self, reason: str, left: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.left = left


class Inventory:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        *,
        idempotency_ttl_s: int,
        timeout_s: float = 1.0,
        direct_link: bool = True,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._batcher = ScriptBatcher(redis, timeout_s=timeout_s, direct=direct_link)
        self._ttl = idempotency_ttl_s
        # (sku, qty) -> the sold-out answer and its encoding: thousands per flash sale
        self._sold_out: dict[tuple[str, int], tuple[PurchaseAnswer, bytes]] = {}

    async def buy(
        self,
        room_id: str,
        user: str,
        request_id: str,
        sku: str,
        qty: int,
        offer_id: str | None = None,
    ) -> PurchaseOutcome:
        keys, args = buy_call(
            room_id,
            user,
            request_id,
            sku,
            qty,
            offer_id or "",
            new_order_id(),
            new_pickup_code(),
            self._ttl,
        )
        kind, answer = await self._batcher.call(self._scripts.inventory_buy, keys, args)
        return PurchaseOutcome(_answer_decoder.decode(answer), repeat=kind == b"repeat")

    async def reject_sold_out(
        self, room_id: str, user: str, request_id: str, sku: str, qty: int
    ) -> PurchaseOutcome:
        """Answer `sold_out` without the script, for a room that knows there are fewer
        than `qty` units left. The answer is recorded as the script would record it, so
        a retry after a restock gets the same answer; a request answered before gets its
        first answer instead. One `SET … NX GET`, batched with the purchases."""
        cached = self._sold_out.get((sku, qty))
        if cached is None:
            if len(self._sold_out) > 10_000:  # bounded whatever the SKUs and quantities
                self._sold_out.clear()
            fresh = PurchaseAnswer(s="rejected", r="sold_out", o="", p="", u=0, k=sku, q=qty)
            cached = self._sold_out[(sku, qty)] = (fresh, _answer_encoder.encode(fresh))
        answer, encoded = cached
        earlier = await self._batcher.set_if_absent(
            RoomKeys.of(room_id).idempotency(user, request_id), encoded, self._ttl
        )
        if earlier is None:
            return PurchaseOutcome(answer, False)
        return PurchaseOutcome(_answer_decoder.decode(earlier), True)

    def quiet_for(self) -> float:
        """Seconds since purchases were last sent to the engine."""
        return asyncio.get_running_loop().time() - self._batcher.last_flush

    async def aclose(self) -> None:
        await self._batcher.aclose()

    async def restock(self, room_id: str, sku: str, delta: int) -> int:
        keys = RoomKeys.of(room_id)
        status, left = await self._scripts.inventory_restock(
            keys=[keys.price, keys.stock, keys.stocked, keys.seq, keys.history],
            args=[sku, delta, keys.channel],
        )
        if status != b"ok":
            raise RestockRefused(status.decode(), int(left))
        return int(left)

    async def put_product(
        self,
        room_id: str,
        sku: str,
        *,
        name: str,
        price: int,
        stock: int,
        image: str | None = None,
    ) -> None:
        keys = RoomKeys.of(room_id)
        meta = msgspec.json.encode({"name": name, **({"image": image} if image else {})})
        await self._scripts.inventory_put_product(
            keys=[keys.products, keys.price, keys.stock, keys.stocked, keys.seq, keys.history],
            args=[sku, meta, price, stock, keys.channel],
        )

    async def ledger(self, room_id: str) -> dict[str, tuple[int, int, int]]:
        """sku -> (stock, sold, stocked): for checks that stock + sold == stocked."""
        keys = RoomKeys.of(room_id)
        async with self._redis.pipeline(transaction=not is_cluster(self._redis)) as pipe:
            for key in (keys.stock, keys.sold, keys.stocked):
                pipe.hgetall(key)
            stock, sold, stocked = await pipe.execute()
        return {
            sku.decode(): (int(left), int(sold.get(sku, 0)), int(stocked.get(sku, 0)))
            for sku, left in stock.items()
        }
