"""Contract: every room message a Lua script emits is a protocol message. Each script
that writes into a room's stream runs on the real engine; every history entry must
decode with `core.protocol`'s server types, with no field the types do not know and
none missing (decode, encode again, compare), and carry `seq` and `ts`."""

from __future__ import annotations

import orjson
import pytest
from redis.asyncio import Redis

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.offers import Offers
from liveshop.commerce.presence import Presence
from liveshop.commerce.rooms import Rooms
from liveshop.core import protocol as p
from liveshop.core.keys import RoomKeys
from liveshop.engine.scripts import Scripts
from tests.conftest import ROOM


class OneViewer:
    """The audience side Presence reads (the realtime hub in the app)."""

    def local_viewers(self) -> dict[str, int]:
        return {ROOM: 1}

    def take_new_viewers(self) -> dict[str, list[str]]:
        return {ROOM: ["u1"]}


async def emitted(redis: Redis) -> list[tuple[str, str]]:
    """(coalesce key, message text) of every entry in the room's history, in order."""
    return [
        (fields[b"k"].decode(), fields[b"m"].decode())
        for _, fields in await redis.xrange(RoomKeys.of(ROOM).history)
    ]


async def test_every_script_emits_protocol_messages(
    domain: tuple[Rooms, Inventory], redis: Redis, scripts: Scripts
) -> None:
    rooms, inventory = domain  # put_product and go_live have emitted already
    offers = Offers(redis, scripts)
    await rooms.pin(ROOM, "lychee-500g")
    await rooms.chat(ROOM, "u1", "荔枝甜吗?")
    await inventory.restock(ROOM, "mango-2pc", 3)
    assert (await inventory.buy(ROOM, "u1", "r1", "lychee-500g", 2)).accepted
    offer_id = await offers.start(
        ROOM,
        p.OfferStart(sku="mango-2pc", price=990, qty=2, duration_s=60, per_user_limit=1),
    )
    assert (await inventory.buy(ROOM, "u2", "r2", "mango-2pc", 1, offer_id)).accepted
    assert (await inventory.buy(ROOM, "u3", "r3", "mango-2pc", 1, offer_id)).accepted  # sold out
    second = await offers.start(
        ROOM,
        p.OfferStart(sku="lychee-500g", price=990, qty=5, duration_s=60, per_user_limit=1),
    )
    assert await offers.stop(ROOM, second)
    await Presence(redis, scripts, OneViewer()).report()
    await rooms.end_live(ROOM)

    messages = await emitted(redis)
    seen: dict[str, int] = {}
    last_seq = 0
    for ckey, text in messages:
        decoded = p.decode_server(text)
        kind = type(decoded).__struct_config__.tag
        assert isinstance(kind, str)
        seen[kind] = seen.get(kind, 0) + 1
        raw = orjson.loads(text)
        assert orjson.loads(p.encode(decoded)) == raw, f"fields beyond the protocol: {text}"
        assert raw["seq"] > last_seq and raw["ts"] > 0
        last_seq = raw["seq"]
        # coalesced values carry the key the hub keeps only the latest of
        if kind == "stock":
            assert ckey == f"stock:{raw['sku']}"
        elif kind == "offer":
            assert ckey == f"offer:{raw['offer_id']}"
        elif kind == "viewers":
            assert ckey == "viewers"
        else:
            assert ckey == "-", f"{kind} must never be coalesced"
    assert set(seen) == {"stock", "live", "pinned", "chat", "offer", "viewers"}
    live = [orjson.loads(t) for _, t in messages if t.startswith('{"type":"live"')]
    assert [m["live"] for m in live] == [True, False]
    statuses = [orjson.loads(t)["status"] for _, t in messages if '"type":"offer"' in t]
    assert {"live", "sold_out", "ended"} <= set(statuses)


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"live","live":true,"session_id":"ls_1","seq":3,"ts":1}',
        '{"type":"live","session_id":"ls_1","live":true,"seq":3,"ts":1}',
    ],
)
def test_a_live_message_is_recognised_by_decoding_not_by_its_spelling(text: str) -> None:
    from liveshop.realtime.hub import starts_a_session

    assert starts_a_session(text)
    assert not starts_a_session(text.replace("true", "false"))
    assert not starts_a_session('{"type":"chat","user":"u","text":"live","seq":4,"ts":1}')
