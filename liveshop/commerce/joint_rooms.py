"""Joint rooms (跨店联播, kind `network`): an HQ or regional broadcast whose viewers buy
from a member store — the pickup store they chose, or the nearest one that delivers to
them with every unit in stock (commerce.routing).

Owns the joint room's route records (`RoomKeys.route`, lua/joint_route.lua) and the
index of joint rooms (`NETWORK_ROOMS`). A purchase is two scripts in two slots, so it
works on a Cluster with the stores on other shards: first the route is recorded in the
joint room's slot, then the chosen store's own purchase script runs in the store's slot
(idempotent by an order id made from the joint room and the request). A store changes
only after it refused, so a retry after a crash, from any process, goes to the same store
and gets the one order. Each store's stock changes only by its own script; the joint
room shows their sum (refreshed after each purchase and by the sweep).
"""

from __future__ import annotations

import asyncio

import msgspec

from liveshop.commerce.inventory import Inventory, PurchaseAnswer, Routed
from liveshop.commerce.routing import StoreSpot, route
from liveshop.core import protocol as p
from liveshop.core.keys import NETWORK_ROOMS, RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.connections import AnyRedis
from liveshop.engine.scripts import Scripts

_answer = msgspec.json.Decoder(p.OrderAck)
ROUTING_AT_ONCE = 32  # routed purchases in flight per process


class _Request(msgspec.Struct):
    store: str = ""
    rule: str = ""
    distance_m: int = 0
    tried: str = ""
    answer: str = ""


def _request(flat: list[bytes]) -> _Request:
    it = iter(flat)
    fields = {as_text(k): as_text(v) for k, v in zip(it, it, strict=True)}
    return msgspec.convert(fields, _Request, strict=False)


def _spot(room_id: str, fields: list[bytes | None]) -> StoreSpot:
    lat, lng, radius = fields
    return StoreSpot(
        room_id,
        None if lat is None else float(lat),
        None if lng is None else float(lng),
        int(radius or 0),
    )


class JointRooms:
    def __init__(
        self, redis: AnyRedis, scripts: Scripts, inventory: Inventory, *, idempotency_ttl_s: int
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._inventory = inventory
        self._ttl = idempotency_ttl_s
        self.network: frozenset[str] = frozenset()  # the joint rooms, as of the last sweep
        # A routed purchase takes several round trips on pooled connections: a burst
        # waits here instead of draining the pool every other caller needs.
        self._routing = asyncio.Semaphore(ROUTING_AT_ONCE)

    def is_network(self, room_id: str) -> bool:
        return room_id in self.network

    def know(self, room_id: str) -> None:
        """A joint room seen at a welcome: routed from now on, before the next sweep."""
        self.network |= {room_id}

    async def _members(self, room_id: str) -> tuple[list[str], list[StoreSpot]]:
        stores = as_text(await self._redis.hget(RoomKeys.of(room_id).room, "stores") or b"")
        ids = [s for s in stores.split(",") if s]
        async with self._redis.pipeline(transaction=False) as pipe:
            for store in ids:
                pipe.hmget(RoomKeys.of(store).room, ["lat", "lng", "delivery_radius_m"])
            places = await pipe.execute()
        return ids, [_spot(i, f) for i, f in zip(ids, places, strict=True)]

    async def _stock(self, stores: list[str], sku: str) -> dict[str, int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for store in stores:
                pipe.hget(RoomKeys.of(store).stock, sku)
            found = await pipe.execute()
        return {s: int(v or 0) for s, v in zip(stores, found, strict=True)}

    async def _route(self, room_id: str, user: str, request_id: str, *args: object) -> list[bytes]:
        keys = RoomKeys.of(room_id)
        reply: list[bytes] = await self._scripts.joint_route(
            keys=[keys.route(user, request_id), keys.stats, keys.buyers, keys.routed_orders(user)],
            args=[*args, self._ttl],
        )
        return reply

    async def buy(self, room_id: str, user: str, msg: p.Buy) -> p.OrderAck:
        """One purchase in a joint room: routed to a member store, exactly once per
        (user, request_id) across retries and processes."""
        async with self._routing:
            return await self._buy(room_id, user, msg)

    async def _buy(self, room_id: str, user: str, msg: p.Buy) -> p.OrderAck:
        state = _request(await self._route(room_id, user, msg.request_id, "get"))
        if state.answer:
            return _answer.decode(state.answer)  # a repeat: the first answer
        keys = RoomKeys.of(room_id)
        live, session_id = await self._redis.hmget(keys.room, ["live", "session_id"])
        price = await self._redis.hget(keys.price, msg.sku)
        if live != b"1" or price is None:
            return self._rejected(msg, "not_live" if live != b"1" else "unknown_sku")
        if msg.offer_id is not None:  # a joint room has no stock of its own to offer
            return self._rejected(msg, "offer_ended")
        ids, spots = await self._members(room_id)
        fulfilment = msg.fulfilment
        delivery = fulfilment if isinstance(fulfilment, p.DeliveryIn) else None
        chosen = fulfilment.store if isinstance(fulfilment, p.PickupIn) else None
        at = (delivery.lat, delivery.lng) if delivery else None
        for _ in range(len(ids) + 1):
            if not state.store:
                tried = frozenset(t for t in state.tried.split(",") if t)
                found = route(
                    spots,
                    await self._stock(ids, msg.sku),
                    msg.qty,
                    chosen=chosen,
                    at=at,
                    tried=tried,
                )
                if found is None:
                    return await self._done(room_id, user, msg, self._rejected(msg, "no_store"))
                moved = await self._route(
                    room_id,
                    user,
                    msg.request_id,
                    "set",
                    "",
                    found.store,
                    found.rule,
                    found.distance_m,
                )
                if moved[0] != b"ok":  # another attempt of this request got there first
                    state = _request(await self._route(room_id, user, msg.request_id, "get"))
                    if state.answer:
                        return _answer.decode(state.answer)
                    continue
                state = _Request(found.store, found.rule, found.distance_m, state.tried)
            outcome = await self._inventory.buy(
                state.store,
                user,
                f"j.{room_id}.{msg.request_id}",
                msg.sku,
                msg.qty,
                delivery=delivery,
                routed=Routed(
                    room_id, state.rule, state.distance_m, int(price), as_text(session_id or b"")
                ),
            )
            answer = outcome.answer
            if answer.s == "accepted":
                ack = msgspec.structs.replace(
                    outcome.ack(msg.request_id),
                    store=state.store,
                    route=p.RouteOut(
                        state.distance_m, "chosen" if state.rule == "chosen" else "nearest_in_stock"
                    ),
                )
                done = await self._done(room_id, user, msg, ack, answer)
                await self.refresh_stock(room_id, [msg.sku], ids)
                return done
            if answer.r in ("sold_out", "unknown_sku") and chosen is None:
                # the store's stock went meanwhile: record that it refused, then the next
                await self._route(room_id, user, msg.request_id, "refused", state.store)
                state = _Request(tried=f"{state.tried},{state.store}".strip(","))
                continue
            reason = "no_store" if answer.r in ("sold_out", "unknown_sku") else answer.r
            return await self._done(room_id, user, msg, self._rejected(msg, reason))
        return await self._done(room_id, user, msg, self._rejected(msg, "no_store"))

    async def routed_order_ids(self, room_id: str, user: str, limit: int = 20) -> list[str]:
        """The buyer's routed orders in this joint room, newest first."""
        ids = await self._redis.lrange(RoomKeys.of(room_id).routed_orders(user), 0, limit - 1)
        return [as_text(i) for i in ids]

    @staticmethod
    def _rejected(msg: p.Buy, reason: str) -> p.OrderAck:
        return p.OrderAck(
            request_id=msg.request_id, status="rejected", sku=msg.sku, qty=msg.qty, reason=reason
        )

    async def _done(
        self,
        room_id: str,
        user: str,
        msg: p.Buy,
        ack: p.OrderAck,
        answer: PurchaseAnswer | None = None,
    ) -> p.OrderAck:
        """Record the request's answer (the first one wins) and count an accepted one in
        the joint room's session."""
        gmv = answer.u * answer.q if answer is not None else 0
        reply = await self._route(
            room_id,
            user,
            msg.request_id,
            "done",
            p.encode(ack),
            ack.status,
            msg.sku,
            msg.qty,
            gmv,
            user,
            ack.order_id or "",
        )
        if reply[0] == b"already":
            return _answer.decode(reply[1])
        return ack

    async def refresh_stock(
        self, room_id: str, skus: list[str], stores: list[str] | None = None
    ) -> None:
        """Show the sum of the member stores' stock in the joint room."""
        ids = stores if stores is not None else (await self._members(room_id))[0]
        keys = RoomKeys.of(room_id)
        for sku in skus:
            total = sum((await self._stock(ids, sku)).values())
            await self._scripts.joint_stock(
                keys=[keys.stock, keys.seq, keys.history], args=[sku, total, keys.channel]
            )

    async def sweep(self, _room_ids: list[str]) -> int:
        """The sweep's pass (every process, every 0.5 s): which rooms are joint rooms,
        and their shown stock (a member store restocked, sold in its own room)."""
        self.network = frozenset(as_text(r) for r in await self._redis.smembers(NETWORK_ROOMS))
        for room_id in self.network:
            skus = [as_text(s) for s in await self._redis.hkeys(RoomKeys.of(room_id).price)]
            await self.refresh_stock(room_id, skus)
        return 0
