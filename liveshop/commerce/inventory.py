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

from liveshop.commerce.order_book import MAX_UNPAID, OrderIds, QrSigner, order_call, order_key
from liveshop.core import protocol as p
from liveshop.core.errors import OutOfBand
from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import is_cluster
from liveshop.engine.scripts import ScriptBatcher, Scripts


class PurchaseAnswer(msgspec.Struct, frozen=True):
    """The script's answer record (short names: it is stored per request for 24 h)."""

    s: str  # accepted | rejected
    r: str  # reason when rejected
    o: str  # order id
    p: str  # pickup code ('' for a delivery)
    u: int  # unit price
    k: str  # sku
    q: int  # qty
    t: str = ""  # the order's first state (v1.1; absent in answers recorded before it)
    b: int = 0  # pay_by, in a `payment: required` room
    g: str = ""  # the group of a group_join


answer_decoder = msgspec.json.Decoder(PurchaseAnswer)
_answer_encoder = msgspec.json.Encoder()


_FIRST_STATES: dict[str, p.OrderState] = {
    "accepted": "accepted",
    "awaiting_payment": "awaiting_payment",
    "pending_group": "pending_group",
}


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
                pickup_code=a.p or None,
                unit_price=a.u,
                state=_FIRST_STATES.get(a.t, "accepted"),
                pay_by=a.b or None,
                group_id=a.g or None,
            )
        return p.OrderAck(
            request_id=request_id,
            status="rejected",
            sku=a.k,
            qty=a.q,
            reason=a.r,
            group_id=a.g or None,
        )


def answer_of(recorded: bytes) -> PurchaseAnswer:
    """The first answer to a request, from what its order key holds: a recorded
    rejection, or the order itself (accepted: the answer is rebuilt as the script does)."""
    if recorded.startswith(b'{"s":'):
        return answer_decoder.decode(recorded)
    o = _order_fields.decode(recorded)
    return PurchaseAnswer(
        s="accepted",
        r="",
        o=o["order_id"],
        p=o.get("pickup_code", ""),
        u=int(o["unit_price"]),
        k=o["sku"],
        q=int(o["qty"]),
        t="pending_group"
        if "group_id" in o
        else "awaiting_payment"
        if "pay_by" in o
        else "accepted",
        b=int(o.get("pay_by", "0")),
        g=o.get("group_id", ""),
    )


_order_fields = msgspec.json.Decoder(dict[str, str])


class Routed(NamedTuple):
    """A joint room's purchase carried out by one of its member stores."""

    via: str  # the joint room
    rule: str  # chosen | nearest_in_stock
    distance_m: int
    unit_price: int  # the joint room's price
    session_id: str  # the joint room's session


def buy_call(
    room_id: str,
    user: str,
    request_id: str,
    sku: str,
    qty: int | str,
    offer_id: str,
    order_id: str,
    pickup_codes: str,
    ttl_s: int | str,
    *,
    qr: str = "",
    delivery: p.DeliveryIn | None = None,
    routed: Routed | None = None,
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of `inventory_buy.lua` (also used by the raw-Lua baseline).
    `pickup_codes`: comma-separated candidates, the first one not in use is taken."""
    keys = RoomKeys.of(room_id)
    order_keys, order_args = order_call(room_id)
    return (
        [
            *order_keys,
            keys.price,
            keys.idempotency(user, request_id),
            keys.stats,
            keys.buyers,
            keys.offers,
            order_key(room_id, order_id),
        ],
        [
            *order_args,
            user,
            request_id,
            sku,
            qty,
            offer_id,
            order_id,
            pickup_codes,
            ttl_s,
            keys.offer(""),
            qr,
            "delivery" if delivery else "pickup",
            delivery.address if delivery else "",
            repr(delivery.lat) if delivery else "",
            repr(delivery.lng) if delivery else "",
            (delivery.phone or "") if delivery else "",
            MAX_UNPAID,
            *(
                (routed.via, routed.rule, routed.distance_m, routed.unit_price, routed.session_id)
                if routed
                else ()
            ),
        ],
    )


def new_pickup_codes(n: int = 4) -> str:
    return ",".join(f"{secrets.randbelow(1_000_000):06d}" for _ in range(n))


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
        qr: QrSigner | None = None,
        order_ids: OrderIds | None = None,
    ) -> None:
        self._qr = qr
        self._ids = order_ids or OrderIds("")
        self._redis = redis
        self._scripts = scripts
        self._batcher = ScriptBatcher(redis, timeout_s=timeout_s, direct=direct_link)
        self._ttl = idempotency_ttl_s
        # (sku, qty) -> the sold-out answer and its encoding: thousands per flash sale
        self._sold_out: dict[tuple[str, int, str], tuple[PurchaseAnswer, bytes]] = {}

    async def buy(
        self,
        room_id: str,
        user: str,
        request_id: str,
        sku: str,
        qty: int,
        offer_id: str | None = None,
        delivery: p.DeliveryIn | None = None,
        routed: Routed | None = None,
    ) -> PurchaseOutcome:
        order_id = self._ids.for_request(room_id, user, request_id)
        for _ in range(5):
            keys, args = buy_call(
                room_id,
                user,
                request_id,
                sku,
                qty,
                offer_id or "",
                order_id,
                "" if delivery else new_pickup_codes(),
                self._ttl,
                qr="" if delivery or self._qr is None else self._qr.sign(order_id),
                delivery=delivery,
                routed=routed,
            )
            kind, answer = await self._batcher.call(self._scripts.inventory_buy, keys, args)
            if kind != b"retry":  # 'retry': every code candidate was taken; nothing changed
                return PurchaseOutcome(answer_decoder.decode(answer), repeat=kind == b"repeat")
        raise TimeoutError("no free pickup code found in 5 tries")

    async def reject_sold_out(
        self, room_id: str, user: str, request_id: str, sku: str, qty: int, reason: str = "sold_out"
    ) -> PurchaseOutcome:
        """Answer `sold_out` without the script, for a room that knows there are fewer
        than `qty` units left. The answer is recorded as the script would record it, so
        a retry after a restock gets the same answer; a request answered before gets its
        first answer instead. One `SET … NX GET`, batched with the purchases."""
        cached = self._sold_out.get((sku, qty, reason))
        if cached is None:
            if len(self._sold_out) > 10_000:  # bounded whatever the SKUs and quantities
                self._sold_out.clear()
            fresh = PurchaseAnswer(s="rejected", r=reason, o="", p="", u=0, k=sku, q=qty)
            cached = self._sold_out[(sku, qty, reason)] = (fresh, _answer_encoder.encode(fresh))
        answer, encoded = cached
        order_id = self._ids.for_request(room_id, user, request_id)
        earlier = await self._batcher.set_if_absent(
            order_key(room_id, order_id), encoded, self._ttl
        )
        if earlier is None:
            return PurchaseOutcome(answer, False)
        return PurchaseOutcome(answer_of(earlier), True)

    @property
    def batcher(self) -> ScriptBatcher:
        """The purchases' batcher: a group join goes out with the buys of the same loop
        turn (one write to the engine), not on a pooled connection of its own."""
        return self._batcher

    def quiet_for(self) -> float:
        """Seconds since purchases were last sent to the engine."""
        return asyncio.get_running_loop().time() - self._batcher.last_flush

    async def aclose(self) -> None:
        await self._batcher.aclose()

    async def restock(self, room_id: str, sku: str, delta: int) -> int:
        keys = RoomKeys.of(room_id)
        status, left = await self._scripts.inventory_restock(
            keys=[keys.price, keys.stock, keys.stocked, keys.seq, keys.history, keys.held],
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
        """Create or replace a product; OutOfBand (nothing changed) when HQ's band for the
        room refuses the price."""
        keys = RoomKeys.of(room_id)
        meta = msgspec.json.encode({"name": name, **({"image": image} if image else {})})
        reply = await self._scripts.inventory_put_product(
            keys=[
                keys.products,
                keys.price,
                keys.stock,
                keys.stocked,
                keys.seq,
                keys.history,
                keys.held,
                keys.bands,
            ],
            args=[sku, meta, price, stock, keys.channel],
        )
        if reply[0] == b"out_of_band":
            raise OutOfBand(sku, price, int(reply[1]), int(reply[2]))

    async def ledger(self, room_id: str) -> dict[str, tuple[int, int, int, int]]:
        """sku -> (stock, held, sold, stocked): for checks that
        stock + held + sold == stocked."""
        keys = RoomKeys.of(room_id)
        async with self._redis.pipeline(transaction=not is_cluster(self._redis)) as pipe:
            for key in (keys.stock, keys.held, keys.sold, keys.stocked):
                pipe.hgetall(key)
            stock, held, sold, stocked = await pipe.execute()
        return {
            sku.decode(): (
                int(left),
                int(held.get(sku, 0)),
                int(sold.get(sku, 0)),
                int(stocked.get(sku, 0)),
            )
            for sku, left in stock.items()
        }
