"""Flash offers: price, unit cap, per-user limit and a time window on one SKU.

Owns the offer hashes, their per-user counters and the room's live-offer index. The
purchase script enforces every offer rule (units, per-user limit, window by the
engine's own clock); this module opens and closes offers and sweeps expired ones so
the room hears `ended` even when nobody buys after the end.
"""

from __future__ import annotations

import secrets

from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, OutOfBand, Rejected
from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import AnyRedis
from liveshop.engine.scripts import Call, Scripts, run_many


def new_offer_id() -> str:
    return "of_" + secrets.token_hex(5)


class Offers:
    def __init__(self, redis: AnyRedis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    async def start(self, room_id: str, req: p.OfferStart) -> str:
        """Open an offer; raises Rejected with a clear reason when it cannot."""
        keys = RoomKeys.of(room_id)
        offer_id = new_offer_id()
        reply = await self._scripts.offers_start(
            keys=[
                keys.room,
                keys.price,
                keys.stock,
                keys.offers,
                keys.seq,
                keys.history,
                keys.bands,
                keys.session_offers,
            ],
            args=[
                offer_id,
                req.sku,
                req.price,
                req.qty,
                req.duration_s * 1000,
                req.per_user_limit,
                keys.channel,
                keys.offer(""),
            ],
        )
        status = reply[0].decode()
        if status == "ok":
            return offer_id
        detail = reply[1].decode() if len(reply) > 1 and isinstance(reply[1], bytes) else ""
        if status == "out_of_band":
            raise OutOfBand(req.sku, req.price, int(reply[1]), int(reply[2]))
        if status == "not_live":
            text = "go live before starting an offer"
        elif status == "unknown_sku":
            text = f"unknown sku {req.sku!r}"
        elif status == "busy":
            text = f"offer {detail} is already live on {req.sku!r}; stop it first"
        else:  # short_stock: the offer may not promise more than is stocked
            text = (
                f"only {reply[1]} units of {req.sku!r} in stock, the offer asks for "
                f"{req.qty}; restock or lower qty"
            )
        raise Rejected(ErrorCode.BAD_MESSAGE, text)

    async def stop(self, room_id: str, offer_id: str) -> bool:
        keys = RoomKeys.of(room_id)
        ended = await self._scripts.offers_close(
            keys=[keys.offers, keys.seq, keys.history],
            args=[offer_id, keys.channel, keys.offer("")],
        )
        return int(ended) == 1

    async def sweep(self, room_ids: list[str]) -> int:
        """End every offer whose time is up in these rooms; returns how many ended."""
        calls: list[Call] = []
        for room_id in room_ids:
            keys = RoomKeys.of(room_id)
            calls.append(
                (
                    self._scripts.offers_close,
                    [keys.offers, keys.seq, keys.history],
                    ["", keys.channel, keys.offer("")],
                )
            )
        return sum(int(ended) for ended in await run_many(self._redis, calls))
