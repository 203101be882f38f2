"""Cross-store deals (多店联动集单): one group that HQ opens across many rooms, with its
own stock; joins from every listed room count together, each member picks up at the
store of the room where they joined.

Owns the deal's keys, under the deal's own hash tag `ls:{hg_…}:` (so one script decides
every join, whichever room it comes from, also on a Redis Cluster), the chain-wide index
`ls:chain_groups` and each room's `ls:{room}:chain_groups`. A member's order lives in its
room (a different slot), so it is made in a second step: right after the join by the
joining process, and by the relay (`ChainGroups.run`, every process) from the deal's
members list, idempotently, for a process that died between the two. The deal's
outcome reaches the members' orders the same way, in batches, guarded by the order
state machine; its progress goes to every listed room's stream at most twice a second.
Contract: a join is decided once; every accepted join gets exactly one order in its
room; every member's order follows the outcome once.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Annotated, Any, Literal

import msgspec
import structlog

from liveshop.commerce import price_bands
from liveshop.commerce.groups import group_from_hash
from liveshop.commerce.inventory import PurchaseAnswer, PurchaseOutcome, new_pickup_codes
from liveshop.commerce.order_book import (
    GROUP_OK,
    OrderBook,
    OrderIds,
    QrSigner,
    order_call,
    order_key,
)
from liveshop.commerce.order_states import By, State
from liveshop.commerce.webhooks import Webhooks, group_closed
from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, Rejected
from liveshop.core.keys import ROOM_ID, RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.scripts import ScriptBatcher, Scripts, call_batched

log = structlog.get_logger("liveshop.commerce.chain_groups")

CHAIN_GROUPS = "ls:chain_groups"  # set: every cross-store deal still to watch
BATCH = 250
RECENT_MS = 10 * 60 * 1000
# The longest hold of an unpaid order (PROTOCOL: hold_s ≤ 1800), and a minute to spare:
# past it no member of a closed deal can still pay in time.
MAX_HOLD_MS = (1800 + 60) * 1000


def is_chain_group(group_id: str) -> bool:
    return group_id.startswith("hg_")


def _prefix(group_id: str) -> str:
    return f"ls:{{{group_id}}}:"


def _keys(group_id: str) -> tuple[str, str, str]:
    t = _prefix(group_id)
    return f"{t}group", f"{t}members", f"{t}list"


def _count_keys(group_id: str) -> list[str]:
    """chain_count.lua's keys: group, members, counted, done."""
    t = _prefix(group_id)
    return [f"{t}group", f"{t}members", f"{t}counted", f"{t}done"]


def chain_events(room_id: str) -> str:
    """list: what deals must learn of their members' orders in this room ('paid',
    'release'; see _orders.lua chain_event), replayed by the relay until acknowledged."""
    return f"{RoomKeys.of(room_id).prefix}chain_events"


def room_index(room_id: str) -> str:
    """hash group id -> ends_at: the deals a room shows (welcome)."""
    return f"{RoomKeys.of(room_id).prefix}chain_groups"


class ChainGroupIn(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /api/groups` (HQ)."""

    rooms: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=ROOM_ID.pattern)]],
        msgspec.Meta(min_length=1, max_length=1000),
    ]
    sku: p.Sku
    price: p.Price
    threshold: Annotated[int, msgspec.Meta(ge=2, le=10_000)]
    duration_s: Annotated[int, msgspec.Meta(ge=600, le=259_200)]
    stock: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    per_user_limit: Annotated[int, msgspec.Meta(ge=1, le=999)]
    metric: Literal["buyers", "units"] = "buyers"


_answer = msgspec.json.Decoder(dict[str, Any])


def state_of(group_id: str, fields: dict[str, str]) -> p.GroupState:
    """A deal as a client sees it: a room's group, with its rooms."""
    rooms: list[str] = msgspec.json.decode(fields["rooms"])
    return msgspec.structs.replace(group_from_hash(group_id, fields), rooms=rooms)


class ChainGroups:
    def __init__(
        self,
        redis: Any,
        scripts: Scripts,
        book: OrderBook,
        *,
        idempotency_ttl_s: int,
        qr: QrSigner | None = None,
        order_ids: OrderIds | None = None,
        interval_s: float = 0.5,
        batcher: ScriptBatcher | None = None,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._book = book
        self._ttl = idempotency_ttl_s
        self._qr = qr
        self._ids = order_ids or OrderIds("")
        self._interval_s = interval_s
        self._stopping = asyncio.Event()
        self._batcher = batcher  # joins go out with the purchases (see groups.Groups)
        self.webhooks: Webhooks | None = None  # set by the app when webhooks are on

    async def start(self, body: ChainGroupIn) -> p.GroupState:
        rooms = sorted(set(body.rooms))
        for room_id in rooms:  # each member picks up the product at their own store
            if not await self._redis.hexists(RoomKeys.of(room_id).price, body.sku):
                raise Rejected(ErrorCode.BAD_MESSAGE, f"room {room_id!r} has no sku {body.sku!r}")
            # The deal's price is set for every listed room: each room's band holds. (The
            # deal's slot is not the rooms', so this reads the rooms' copies first.)
            price_bands.check(
                await price_bands.room_band(self._redis, room_id, body.sku), body.sku, body.price
            )
        group_id = "hg_" + secrets.token_hex(5)
        group, _, _ = _keys(group_id)
        ends_at = int(
            await self._scripts.chain_start(
                keys=[group],
                args=[
                    body.sku,
                    body.price,
                    body.metric,
                    body.threshold,
                    body.duration_s * 1000,
                    body.stock,
                    body.per_user_limit,
                    msgspec.json.encode(rooms).decode(),
                ],
            )
        )
        await self._redis.sadd(CHAIN_GROUPS, group_id)
        for room_id in rooms:
            await self._redis.hset(room_index(room_id), group_id, ends_at)
        found = await self.get(group_id)
        assert found is not None
        await self._announce(group_id, found)
        return found

    async def get(self, group_id: str) -> p.GroupState | None:
        group, _, _ = _keys(group_id)
        raw = await self._redis.hgetall(group)
        return state_of(group_id, _text(raw)) if raw else None

    async def for_room(self, room_id: str, now_ms: int) -> list[p.GroupState]:
        """The deals `welcome.state.groups` shows in a room."""
        out = []
        for gid in await self._redis.hkeys(room_index(room_id)):
            group, _, _ = _keys(as_text(gid))
            fields = _text(await self._redis.hgetall(group))
            closed = fields.get("closed_at")
            if fields and (closed is None or now_ms - int(closed) <= RECENT_MS):
                out.append(state_of(as_text(gid), fields))
        return out

    async def join(self, room_id: str, user: str, msg: p.GroupJoin) -> PurchaseOutcome:
        # Its own namespace of ids: a buy with the same request id is another order.
        order_id = self._ids.for_request(room_id, user, f"{msg.group_id}:{msg.request_id}")
        group, members, listed = _keys(msg.group_id)
        # In a `payment: required` room a member counts once paid (the relay learns it).
        pay_first = await self._redis.hget(RoomKeys.of(room_id).room, "payment") == b"required"
        counted = _count_keys(msg.group_id)[2]
        kind, raw = await call_batched(
            self._batcher,
            self._scripts.chain_join,
            [group, members, listed, f"{_prefix(msg.group_id)}join:{order_id}", counted],
            [room_id, user, msg.qty, order_id, self._ttl, "1" if pay_first else ""],
        )
        a = _answer.decode(raw)
        repeat = kind == b"repeat"
        if a["s"] != "accepted":
            answer = PurchaseAnswer(
                s="rejected", r=a["r"], o="", p="", u=0, k=a["k"], q=a["q"], g=msg.group_id
            )
            return PurchaseOutcome(answer, repeat)
        order = await self._member_order(
            room_id,
            order_id,
            user,
            a["k"],
            int(a["q"]),
            int(a["u"]),
            msg.group_id,
            a["status"],
            pay_first=pay_first,
        )
        first = State.AWAITING_PAYMENT if order.pay_by else State.PENDING_GROUP
        answer = PurchaseAnswer(
            s="accepted",
            r="",
            o=order_id,
            p=order.fulfilment.pickup_code or "",
            u=order.unit_price,
            k=order.sku,
            q=order.qty,
            t=first.value,
            b=order.pay_by or 0,
            g=msg.group_id,
        )
        return PurchaseOutcome(answer, repeat)

    async def _member_order(
        self,
        room_id: str,
        order_id: str,
        user: str,
        sku: str,
        qty: int,
        price: int,
        group_id: str,
        status: str,
        *,
        pay_first: bool,
    ) -> p.Order:
        keys, args = order_call(room_id)
        for _ in range(5):
            reply = await call_batched(
                self._batcher,
                self._scripts.orders_member,
                [*keys, order_key(room_id, order_id)],
                [
                    *args,
                    order_id,
                    user,
                    sku,
                    qty,
                    price,
                    group_id,
                    new_pickup_codes(),
                    "" if self._qr is None else self._qr.sign(order_id),
                    GROUP_OK,
                    status,
                    "1" if pay_first else "",
                ],
            )
            if reply[0] != b"retry":
                return msgspec.json.decode(reply[1], type=p.Order)
        raise TimeoutError("no free pickup code found in 5 tries")

    async def cancel(self, group_id: str) -> bool:
        group, _, _ = _keys(group_id)
        return bool(await self._scripts.chain_end(keys=[group], args=["cancel"]))

    # -- the relay: every process runs it -------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.relay_once()
            except Exception as exc:  # the engine away: the next pass catches up
                log.warning("chain group relay failed; retrying", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)

    async def relay_once(self) -> None:
        deals = [as_text(g) for g in await self._redis.smembers(CHAIN_GROUPS)]
        rooms: set[str] = set()
        for gid in deals:
            rooms.update(await self._relay(gid))
        await self._replay_events(sorted(rooms))

    async def _replay_events(self, rooms: list[str]) -> None:
        """The members' payments and unpaid ends in these rooms reach their deals (once
        per order and kind: chain_count.lua remembers), then leave the rooms' lists. A
        payment the deal cannot take (it failed) is refunded by the state machine."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for room_id in rooms:
                pipe.lrange(chain_events(room_id), 0, BATCH - 1)
            found = await pipe.execute()
        for room_id, raw in zip(rooms, found, strict=True):
            for entry in (as_text(e) for e in raw):
                kind, group_id, order_id, user, qty = entry.split("|")
                outcome = as_text(
                    await self._scripts.chain_count(
                        keys=_count_keys(group_id), args=[kind, order_id, user, qty]
                    )
                )
                if outcome == "refund":
                    with contextlib.suppress(Rejected):  # moved already: the guard holds
                        await self._book.move(
                            order_id, State.CANCELLED, By.GROUP, "group", reason="group_failed"
                        )
                await self._redis.lrem(chain_events(room_id), 1, entry)

    async def _relay(self, group_id: str) -> list[str]:
        """One pass over a deal; returns its rooms (their events are replayed next)."""
        group, _, listed = _keys(group_id)
        await self._scripts.chain_end(keys=[group], args=["clock"])  # guarded: due or not
        fields = _text(await self._redis.hgetall(group))
        if not fields:
            await self._redis.srem(CHAIN_GROUPS, group_id)
            return []
        # 1. every accepted join has its order in its room
        created = int(fields["created"])
        entries = [
            as_text(e) for e in await self._redis.lrange(listed, created, created + BATCH - 1)
        ]
        for entry in entries:
            room_id, order_id, user, qty, *flags = entry.split("|")
            await self._member_order(
                room_id,
                order_id,
                user,
                fields["sku"],
                int(qty),
                int(fields["price"]),
                group_id,
                "open",  # the outcome follows in step 2, through the state machine
                pay_first=flags == ["p"],
            )
        if entries:
            await self._scripts.chain_cursor(
                keys=[group], args=["created", str(created), str(created + len(entries))]
            )
        # 2. the outcome reaches every member's order (only orders already made)
        status = fields["status"]
        if status in ("succeeded", "failed", "cancelled"):
            settled = int(fields["settled"])
            upto = created + len(entries)
            batch = (
                [
                    as_text(e)
                    for e in await self._redis.lrange(
                        listed, settled, min(upto, settled + BATCH) - 1
                    )
                ]
                if upto > settled
                else []
            )
            target = State.ACCEPTED if status == "succeeded" else State.CANCELLED
            reason = "" if status == "succeeded" else "group_failed"
            for entry in batch:
                with contextlib.suppress(Rejected):  # moved already: the guard holds
                    await self._book.move(
                        entry.split("|")[1], target, By.GROUP, "group", reason=reason
                    )
            if batch:
                await self._scripts.chain_cursor(
                    keys=[group], args=["settled", str(settled), str(settled + len(batch))]
                )
        # 3. progress to every room, at most twice a second (one process per turn)
        if fields.get("dirty") and await self._redis.set(
            f"{_prefix(group_id)}announce", "1", nx=True, px=450
        ):
            await self._redis.hdel(group, "dirty")
            found = await self.get(group_id)
            if found is not None:
                await self._announce(group_id, found)
        closed = fields.get("closed_at")
        if closed is not None and "hooked" not in fields and self.webhooks is not None:
            await self._hook_closed(group_id, fields, int(closed))
        total = await self._redis.llen(listed)
        rooms: list[str] = msgspec.json.decode(fields["rooms"])
        # Done watching once every member's order has its outcome, and (a member who
        # pays before their pay_by is still counted or refunded) the last pay_by passed.
        done = (
            closed is not None
            and int(fields["settled"]) >= total
            and int(fields["created"]) >= total
        )
        if done and closed is not None and int(closed) + MAX_HOLD_MS < time.time() * 1000:
            await self._redis.srem(CHAIN_GROUPS, group_id)
        return rooms

    async def _hook_closed(self, group_id: str, fields: dict[str, str], closed: int) -> None:
        """The deal's `group.closed` webhook: written (a repeat is the same event) before
        the deal is marked, so a relay that dies in between only writes it again."""
        assert self.webhooks is not None
        _, members, _ = _keys(group_id)
        joined = sum(1 for units in await self._redis.hvals(members) if int(units) > 0)
        state = msgspec.to_builtins(state_of(group_id, fields))
        data = {k: v for k, v in state.items() if v is not None and k != "type"}
        data |= {"members": joined, "closed_at": closed}
        await self.webhooks.enqueue([group_closed("", group_id, closed, data)])
        await self._redis.hset(_keys(group_id)[0], "hooked", "1")

    async def _announce(self, group_id: str, state: p.GroupState) -> None:
        body = p.encode(msgspec.structs.replace(state, seq=None, ts=None))[:-1]
        for room_id in state.rooms or []:
            keys = RoomKeys.of(room_id)
            await self._scripts.rooms_emit(
                keys=[keys.seq, keys.history], args=[f"group:{group_id}", body, keys.channel]
            )


def _text(raw: dict[Any, Any]) -> dict[str, str]:
    return {as_text(k): as_text(v) for k, v in raw.items()}
