"""Lucky draws over real sockets on two servers sharing one engine: the commitment at the
start matches the seed revealed at the end; the winners recomputed by the verifier
printed in docs/protocol.md (run as written) match; entering twice counts once; fewer
entrants than winners picks all; `chatted` and `buyers` eligibility; drawn exactly once
though both processes sweep."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from liveshop.commerce.draws import winners
from liveshop.core.keys import RoomKeys
from tests.conftest import ROOM, seeded_server
from tests.support import UNIT, Client, RunningServer, settings_for, token

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
HOST = token("broadcaster", "host1", ROOM)


def doc_verifier() -> dict[str, Any]:
    """The ```python block of the draws section of docs/protocol.md, executed."""
    text = DOC.read_text()
    section = text[text.index("## Lucky draws") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    assert len(code.group(1).strip().splitlines()) <= 25  # "a 20-line verifier"
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # our own documentation's example, run as written
    return namespace


async def started(host: Client, **fields: Any) -> dict[str, Any]:
    start = len(host.received)
    await host.send({"type": "draw_start", "duration_s": 10, **fields})
    return await host.wait_for(lambda m: m["type"] == "draw", start=start)


async def enter(c: Client, draw_id: str) -> dict[str, Any] | None:
    """The entry's error, or None (an error comes before the pong of a later ping)."""
    await c.send({"type": "draw_enter", "draw_id": draw_id})
    reply = await c.request({"type": "ping"}, "pong")
    return reply if reply["type"] == "error" else None


async def test_draws_are_verifiable_and_drawn_once(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    host = await Client.connect(a.ws_url(ROOM))
    await host.hello(HOST)
    viewers = []
    for n in range(12):
        c = await Client.connect((a if n % 2 else b).ws_url(ROOM))
        await c.hello(token(user=f"v{n}"))
        viewers.append(c)
    try:
        big = await started(host, prize="荔枝一箱", winners=3)
        small = await started(host, prize="芒果", winners=10)
        chatted = await started(host, prize="榴莲", winners=1, eligible="chatted")
        bought = await started(host, prize="柚子", winners=1, eligible="buyers")
        for d in (big, small, chatted, bought):
            assert d["status"] == "open" and "seed" not in d and "winners" not in d
            assert re.fullmatch(r"[0-9a-f]{64}", d["commitment"])
        assert await asyncio.gather(*(enter(c, big["draw_id"]) for c in viewers)) == [None] * 12
        assert await enter(viewers[0], big["draw_id"]) is None  # again: a no-op
        for c in viewers[:3]:
            assert await enter(c, small["draw_id"]) is None
        # eligibility: v0 chats, v1 buys
        not_yet = await enter(viewers[0], chatted["draw_id"])
        assert not_yet is not None and not_yet["code"] == "forbidden"
        await viewers[0].send({"type": "chat", "text": "想要榴莲"})
        await host.wait_for(lambda m: m["type"] == "chat" and m["user"] == "v0")
        assert await enter(viewers[0], chatted["draw_id"]) is None
        refused = await enter(viewers[1], bought["draw_id"])
        assert refused is not None and refused["code"] == "forbidden"
        ack = await viewers[1].request(
            {"type": "buy", "request_id": "b1", "sku": "lychee-500g", "qty": 1}, "order_ack"
        )
        assert ack["status"] == "accepted"
        assert await enter(viewers[1], bought["draw_id"]) is None

        verifier = doc_verifier()
        async with httpx.AsyncClient(base_url=a.http, timeout=10 * UNIT) as http:
            for d, expected_entrants in (
                (big, [f"v{n}" for n in range(12)]),
                (small, ["v0", "v1", "v2"]),
                (chatted, ["v0"]),
                (bought, ["v1"]),
            ):
                drawn = await viewers[5].wait_for(
                    lambda m, i=d["draw_id"]: (
                        m["type"] == "draw" and m["draw_id"] == i and m["status"] == "drawn"
                    ),
                    timeout=15.0,
                )
                assert drawn["commitment"] == d["commitment"]
                reply = await http.get(
                    f"/api/rooms/{ROOM}/draws/{d['draw_id']}",
                    headers={"Authorization": f"Bearer {token(user='anyone')}"},
                )
                entrants = reply.json()["entrants"]
                assert entrants == sorted(expected_entrants)
                assert verifier["check_draw"](drawn, entrants)
                k = drawn["winners_count"]
                assert drawn["winners"] == winners(bytes.fromhex(drawn["seed"]), entrants, k)
                assert len(drawn["winners"]) == min(k, len(entrants))
                # a forged result fails the verifier
                forged = {**drawn, "winners": list(reversed(drawn["winners"]))}
                if len(drawn["winners"]) > 1:
                    assert not verifier["check_draw"](forged, entrants)
        assert sorted(winners(b"\x00" * 32, ["a", "b", "c"], 3)) == ["a", "b", "c"]
        await asyncio.sleep(1.2 * UNIT)  # more sweeps on both processes
        for d in (big, small, chatted, bought):
            revealed = [
                m
                for m in viewers[4].of_type("draw")
                if m["draw_id"] == d["draw_id"] and m["status"] == "drawn"
            ]
            assert len(revealed) == 1  # drawn once
        late = await enter(viewers[2], big["draw_id"])
        assert late is not None and late["code"] == "not_found"
    finally:
        await asyncio.gather(host.close(), *(c.close() for c in viewers))


async def test_old_draws_and_polls_leave_the_room_and_a_draw_stays_checkable(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    """A draw or poll a day past its end leaves the room's list when the next one starts
    (every welcome reads each listed one) and its keys expire a week later; the drawn
    draw is then still checkable at its REST address, from the stored result."""
    async with seeded_server(settings_for(redis_url, tmp_path)) as srv:
        host = await Client.connect(srv.ws_url(ROOM))
        await host.hello(HOST)
        fan = await Client.connect(srv.ws_url(ROOM))
        await fan.hello(token(user="v1"))
        keys = RoomKeys.of(ROOM)
        try:
            old = await started(host, prize="旧福袋", winners=1)
            assert await enter(fan, old["draw_id"]) is None
            # its end moved to now: the sweep draws it, then it is made a day old
            now = int(time.time() * 1000)
            await redis.hset(f"{keys.prefix}draw:{old['draw_id']}", "ends_at", now)
            drawn = await fan.wait_for(
                lambda m: m["type"] == "draw" and m["status"] == "drawn", timeout=10
            )
            poll = await host.request(
                {"type": "poll_start", "question": "?", "options": ["a", "b"], "duration_s": 10},
                "poll",
            )
            a_day_ago = now - 86_400_000 - 1
            await redis.hset(keys.draws, old["draw_id"], a_day_ago)
            await redis.hset(keys.polls, poll["poll_id"], a_day_ago)
            new = await started(host, prize="新福袋", winners=1)
            await host.request(
                {"type": "poll_start", "question": "!", "options": ["c", "d"], "duration_s": 10},
                "poll",
            )
            assert await redis.hkeys(keys.draws) == [new["draw_id"].encode()]
            assert poll["poll_id"].encode() not in await redis.hkeys(keys.polls)
            for key in (f"draw:{old['draw_id']}", f"draw:{old['draw_id']}:entrants"):
                assert 6 * 86_400 < await redis.ttl(keys.prefix + key) <= 7 * 86_400
            assert await redis.ttl(f"{keys.prefix}poll:{poll['poll_id']}") > 6 * 86_400
            late = await Client.connect(srv.ws_url(ROOM))
            welcome = await late.hello(token(user="v2"))
            await late.close()
            assert [d["draw_id"] for d in welcome["state"]["draws"]] == [new["draw_id"]]
            # a week later the engine's keys are gone: the address answers from the database
            await redis.delete(f"{keys.prefix}draw:{old['draw_id']}")
            url = f"/api/rooms/{ROOM}/draws/{old['draw_id']}"
            async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
                got = (await http.get(url, headers={"Authorization": f"Bearer {HOST}"})).json()
        finally:
            await host.close()
            await fan.close()
    assert got["entrants"] == ["v1"]
    assert (got["draw"]["seed"], got["draw"]["winners"]) == (drawn["seed"], ["v1"])
    assert got["draw"]["commitment"] == old["commitment"]
