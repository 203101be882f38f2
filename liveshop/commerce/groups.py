"""Group buying (拼团 / 接龙) in one store's room: start, join, cancel, and what a
client sees of a group.

Owns a room's groups (keys in lua/_groups.lua, under the room's hash tag). Contract:
a join is one script run that checks the group (open, time, units, per-user limit),
creates the member's order `pending_group` and counts it, so a group never takes more
joins than its units and no join lands after its close; the join that reaches the
threshold makes the group `succeeded` in the same run. A group's end (its `ends_at`,
swept by every process like the holds, or the broadcaster's cancel) is guarded: only a
running group is ended, once. Members' orders move in batches of 250 per script run,
along `order_states` (specs from the table). Must not touch sockets.
"""

from __future__ import annotations

import secrets

import msgspec

from liveshop.commerce.inventory import (
    PurchaseAnswer,
    PurchaseOutcome,
    answer_decoder,
    new_pickup_codes,
)
from liveshop.commerce.order_book import (
    GROUP_FAIL,
    GROUP_OK,
    MAX_UNPAID,
    OrderIds,
    QrSigner,
    order_call,
    order_key,
)
from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, OutOfBand, Rejected
from liveshop.core.keys import RoomKeys
from liveshop.engine.scripts import ScriptBatcher, Scripts, call_batched

RECENT_MS = 10 * 60 * 1000  # closed groups stay in welcome this long

_group = msgspec.json.Decoder(p.GroupState)


def new_group_id() -> str:
    return "g_" + secrets.token_hex(5)


def group_from_hash(group_id: str, fields: dict[str, str]) -> p.GroupState:
    return msgspec.convert(
        {
            "group_id": group_id,
            "sku": fields["sku"],
            "price": int(fields["price"]),
            "metric": fields["metric"],
            "threshold": int(fields["threshold"]),
            "value": int(fields["value"]),
            "cap": int(fields["cap"]),
            "left": int(fields["left"]),
            "per_user_limit": int(fields["per_user_limit"]),
            "ends_at": int(fields["ends_at"]),
            "status": fields["status"],
        },
        p.GroupState,
    )


def visible(fields: dict[str, str], now: int) -> bool:
    """In `welcome.state.groups`: still taking joins, or closed in the last 10 min."""
    closed_at = fields.get("closed_at")
    if closed_at is None and fields.get("status") in ("open", "succeeded"):
        return True
    return closed_at is not None and now - int(closed_at) <= RECENT_MS


def group_stats(groups: list[p.GroupState]) -> p.StatsGroups:
    """The room's groups in the broadcaster's `stats`: how many by status."""
    by_status = dict.fromkeys(("open", "succeeded", "failed", "cancelled"), 0)
    for g in groups:
        by_status[g.status] += 1
    return p.StatsGroups(
        open=by_status["open"],
        succeeded=by_status["succeeded"],
        failed=by_status["failed"] + by_status["cancelled"],
    )


class Groups:
    def __init__(
        self,
        scripts: Scripts,
        *,
        idempotency_ttl_s: int,
        qr: QrSigner | None = None,
        order_ids: OrderIds | None = None,
        batcher: ScriptBatcher | None = None,
    ) -> None:
        self._scripts = scripts
        self._ttl = idempotency_ttl_s
        self._qr = qr
        self._ids = order_ids or OrderIds("")
        # Joins burst like a flash sale's taps: sent with the purchases, one write per
        # loop turn (each on a pooled connection of its own, 5,000 joins in a second
        # queued for the pool and timed out).
        self._batcher = batcher

    async def start(self, room_id: str, msg: p.GroupStart) -> p.GroupState:
        """Open a group; its `cap` units leave the shelf. Rejected(bad_message) names what
        is wrong (unknown SKU, too few units, a cap below a units threshold)."""
        if msg.metric == "units" and msg.cap < msg.threshold:
            raise Rejected(ErrorCode.BAD_MESSAGE, "cap must be at least the units threshold")
        keys, args = order_call(room_id)
        reply = await self._scripts.groups_start(
            keys=[*keys, RoomKeys.of(room_id).price, RoomKeys.of(room_id).bands],
            args=[
                *args,
                new_group_id(),
                msg.sku,
                msg.price,
                msg.metric,
                msg.threshold,
                msg.duration_s * 1000,
                msg.cap,
                msg.per_user_limit,
            ],
        )
        if reply[0] == b"out_of_band":
            raise OutOfBand(msg.sku, msg.price, int(reply[1]), int(reply[2]))
        if reply[0] == b"unknown_sku":
            raise Rejected(ErrorCode.BAD_MESSAGE, f"unknown sku {msg.sku!r}")
        if reply[0] == b"short":
            raise Rejected(
                ErrorCode.BAD_MESSAGE,
                f"only {int(reply[1])} units of {msg.sku} on the shelf, the group needs {msg.cap}",
            )
        return _group.decode(reply[1])

    async def join(self, room_id: str, user: str, msg: p.GroupJoin) -> PurchaseOutcome:
        order_id = self._ids.for_request(room_id, user, msg.request_id)
        keys, args = order_call(room_id)
        for _ in range(5):
            kind, answer = await call_batched(
                self._batcher,
                self._scripts.groups_join,
                [*keys, order_key(room_id, order_id)],
                [
                    *args,
                    user,
                    msg.group_id,
                    msg.qty,
                    order_id,
                    new_pickup_codes(),
                    self._ttl,
                    "" if self._qr is None else self._qr.sign(order_id),
                    GROUP_OK,
                    GROUP_FAIL,
                    MAX_UNPAID,
                ],
            )
            if kind != b"retry":
                decoded: PurchaseAnswer = answer_decoder.decode(answer)
                return PurchaseOutcome(decoded, repeat=kind == b"repeat")
        raise TimeoutError("no free pickup code found in 5 tries")

    async def cancel(self, room_id: str, group_id: str) -> None:
        keys, args = order_call(room_id)
        reply = await self._scripts.groups_cancel(
            keys=keys, args=[*args, group_id, GROUP_OK, GROUP_FAIL]
        )
        if reply[0] == b"not_found":
            raise Rejected(ErrorCode.BAD_MESSAGE, f"no group {group_id!r}")
        if reply[0] == b"not_open":
            raise Rejected(
                ErrorCode.BAD_MESSAGE, f"the group is {reply[1].decode()}: only an open one"
            )
