"""The broadcaster's live figures and hints over real sockets; session totals survive
a server restart."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from redis.asyncio import Redis

from liveshop.commerce import coaching
from liveshop.commerce.inventory import Inventory
from liveshop.commerce.offers import Offers
from liveshop.commerce.rooms import Rooms, now_ms
from liveshop.commerce.stats import Broadcasters, claim_hints, record_interaction
from liveshop.core.keys import RoomKeys
from liveshop.engine.scripts import Scripts
from tests.conftest import PRODUCTS, ROOM, seed_room
from tests.support import Client, RunningServer, settings_for, token


async def test_a_hint_arrives_after_real_viewers_like_a_product(server: RunningServer) -> None:
    host = await Client.connect(server.ws_url(ROOM))
    await host.hello(token("broadcaster", "boss", room=ROOM), lang="en")
    fans = [await Client.connect(server.ws_url(ROOM)) for _ in range(3)]
    for i, f in enumerate(fans):
        await f.hello(token(user=f"fan{i}"))
    for f in fans:
        for _ in range(3):
            await f.send({"type": "like", "sku": "mango-2pc"})
    await fans[0].send({"type": "chat", "text": "海南贵妃芒 甜不甜?"})
    hint = await host.wait_for(lambda m: m["type"] == "hint", timeout=5)
    assert hint["code"] == "focus_product" and hint["sku"] == "mango-2pc"
    assert hint["lang"] == "en" and "海南贵妃芒 2个装" in hint["text"]
    assert hint["severity"] == "act_now" and "seq" not in hint
    # viewers get neither hints nor stats
    assert not [m for f in fans for m in f.received if m["type"] in ("hint", "stats")]


async def test_likes_are_rate_limited_per_user(server: RunningServer) -> None:
    fan = await Client.connect(server.ws_url(ROOM))
    await fan.hello(token(user="clicky"))
    for _ in range(12):
        await fan.send({"type": "like", "sku": "lychee-500g"})
    err = await fan.wait_for(lambda m: m["type"] == "error")
    assert err["code"] == "rate_limited"
    assert len(fan.of_type("error")) <= 2


async def test_stats_go_to_the_broadcaster_every_second(server: RunningServer) -> None:
    host = await Client.connect(server.ws_url(ROOM))
    await host.hello(token("broadcaster", "boss", room=ROOM))
    first = await host.next_of("stats", timeout=3)
    second = await host.next_of("stats", timeout=3)
    assert first["session_id"] == second["session_id"]
    assert {"viewers", "peak", "orders", "units", "gmv", "conversion", "top"} <= set(second)


async def test_session_totals_survive_a_server_restart(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    srv = await RunningServer(settings_for(redis_url, tmp_path)).start()
    assert srv.runtime.services is not None
    await seed_room(srv.runtime.services.rooms, srv.runtime.services.inventory)
    buyer = await Client.connect(srv.ws_url(ROOM))
    await buyer.hello(token(user="loyal"))
    for n in range(3):
        ack = await buyer.request(
            {"type": "buy", "request_id": f"r{n}", "sku": "lychee-500g", "qty": 2}, "order_ack"
        )
        assert ack["status"] == "accepted"
    await buyer.close()
    session_id = (await srv.runtime.services.rooms.snapshot(ROOM)).state.session_id
    await srv.stop()

    srv = await RunningServer(settings_for(redis_url, tmp_path)).start()
    try:
        host = await Client.connect(srv.ws_url(ROOM))
        welcome = await host.hello(token("broadcaster", "boss", room=ROOM))
        assert welcome["state"]["session_id"] == session_id and welcome["state"]["live"]
        stats = await host.next_of("stats", timeout=3)
        assert (stats["session_id"], stats["orders"], stats["units"], stats["gmv"]) == (
            session_id,
            3,
            6,
            6 * 1990,
        )
        await host.send({"type": "end_live"})
        await host.wait_for(lambda m: m["type"] == "live" and m["live"] is False)
        assert srv.runtime.services is not None
        (session,) = await srv.runtime.services.rooms.sessions(ROOM)
        assert session["session_id"] == session_id
        assert (session["orders"], session["units"], session["gmv"], session["buyers"]) == (
            3,
            6,
            6 * 1990,
            1,
        )
        assert session["ended_at"] >= session["started_at"]
    finally:
        await srv.stop()


class _Consoles:
    """One process's broadcaster sockets for room s001, recording what they were sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    def local_rooms(self) -> list[str]:
        return [ROOM]

    def console_rooms(self) -> list[str]:
        return [ROOM]

    def product_names(self, room_id: str) -> dict[str, str]:
        return {sku: name for sku, name, _, _ in PRODUCTS}

    def to_consoles(self, room_id: str, render: Callable[[str], str]) -> None:
        self.sent.append(json.loads(render("zh-CN")))

    def hints(self) -> list[str]:
        return [str(m["code"]) for m in self.sent if m["type"] == "hint"]


def _process(redis: Redis, scripts: Scripts, consoles: _Consoles) -> Broadcasters:
    presence = SimpleNamespace(totals={})  # no viewers: only the engagement rule can fire
    return Broadcasters(redis, consoles, Offers(redis, scripts), presence)  # type: ignore[arg-type]


async def test_a_hint_is_not_repeated_by_another_process_within_its_cooldown(
    redis: Redis, scripts: Scripts, domain: tuple[Rooms, Inventory]
) -> None:
    for _ in range(6):  # a burst of likes on one product: focus_product fires
        await record_interaction(redis, ROOM, ["mango-2pc"], now_ms())
    first = _Consoles()
    await _process(redis, scripts, first).tick()
    assert first.hints() == ["focus_product"]
    key = RoomKeys.of(ROOM).hint_cooldown("focus_product", "mango-2pc")
    assert 0 < await redis.pttl(key) <= coaching.COOLDOWN_MS["focus_product"]

    # The console reconnects to another process (or this one forgot the room): the figures
    # still say "focus", but the cooldown is in Redis, so nothing is repeated.
    second = _Consoles()
    other = _process(redis, scripts, second)
    await other.tick()
    assert second.hints() == [] and any(m["type"] == "stats" for m in second.sent)

    await redis.delete(key)  # the cooldown ran out
    await other.tick()
    assert second.hints() == ["focus_product"]


async def test_claiming_a_hint_is_won_once(redis: Redis) -> None:
    cand = coaching.Candidate("release_offer", "act_now", "room")
    won = [await claim_hints(redis, ROOM, [cand]) for _ in range(3)]
    assert won == [[cand], [], []]
    pttl = await redis.pttl(RoomKeys.of(ROOM).hint_cooldown("release_offer", "room"))
    cooldown = coaching.COOLDOWN_MS["release_offer"]
    assert cooldown - 5_000 < pttl <= cooldown
