"""Polls over real sockets on two servers sharing one engine: 1,000 viewers vote at once
(each twice, some changing their mind), each counted once, the totals exact on the room
stream of both processes; the counts are coalesced (far fewer messages than votes); the
poll closes at its deadline once, and a late vote is refused; a new viewer's welcome
shows it."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tests.conftest import ROOM
from tests.support import UNIT, Client, RunningServer, token

VOTERS = 1000


async def test_a_thousand_concurrent_voters_are_each_counted_once(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    host = await Client.connect(a.ws_url(ROOM))
    await host.hello(token("broadcaster", "host1", ROOM))
    watcher_b = await Client.connect(b.ws_url(ROOM))
    await watcher_b.hello(None)
    voters: list[Client] = []
    try:
        start = len(host.received)
        await host.send(
            {
                "type": "poll_start",
                "question": "下一个上什么?",
                "options": ["荔枝", "芒果", "榴莲"],
                "duration_s": 10,
            }
        )
        opened = await host.wait_for(lambda m: m["type"] == "poll", start=start)
        poll_id = opened["poll_id"]
        assert opened["counts"] == [0, 0, 0] and opened["status"] == "open"

        async def join(n: int) -> Client:
            c = await Client.connect((a if n % 2 else b).ws_url(ROOM))
            await c.hello(token(user=f"v{n}"))
            return c

        # joined 100 at a time (a connect storm is the reconnect benchmark's business);
        # the votes below are all sent at once
        for batch in range(0, VOTERS, 100):
            voters += await asyncio.gather(*(join(n) for n in range(batch, batch + 100)))
        rng = random.Random(7)
        first = [rng.randrange(3) for _ in range(VOTERS)]
        second = [rng.randrange(3) for _ in range(VOTERS)]

        async def vote(c: Client, option: int) -> dict[str, Any] | None:
            """The vote's error, or None: a socket's messages are handled in order, so
            an error for the vote comes before the pong of a ping sent after it."""
            await c.send({"type": "vote", "poll_id": poll_id, "option": option})
            reply = await c.request({"type": "ping"}, "pong", timeout=20.0)
            return reply if reply["type"] == "error" else None

        said = await asyncio.gather(*(vote(c, o) for c, o in zip(voters, first, strict=True)))
        assert said == [None] * VOTERS
        again = await asyncio.gather(*(vote(c, o) for c, o in zip(voters, second, strict=True)))
        for before, after, reply in zip(first, second, again, strict=True):
            # the same vote again is a no-op; another option is refused, the first stands
            assert reply is None if before == after else reply["code"] == "already_voted"
        expected = [first.count(i) for i in range(3)]

        def latest(c: Client) -> dict[str, Any] | None:
            polls = [m for m in c.of_type("poll") if m["poll_id"] == poll_id]
            return polls[-1] if polls else None

        for c in (host, watcher_b):
            await c.wait_for(lambda m: m["type"] == "poll" and m["counts"] == expected, timeout=5.0)
        shown = [m for m in watcher_b.of_type("poll") if m["poll_id"] == poll_id]
        assert len(shown) < VOTERS // 10  # coalesced: not a message per vote
        counts_seen = [sum(m["counts"]) for m in shown]
        assert counts_seen == sorted(counts_seen)  # never goes back

        late_viewer = await Client.connect(b.ws_url(ROOM))
        welcome = await late_viewer.hello(token(user="late"))
        assert welcome["state"]["polls"][0]["counts"] == expected
        closed = await host.wait_for(
            lambda m: m["type"] == "poll" and m["status"] == "closed", timeout=15.0
        )
        assert closed["counts"] == expected
        late = await late_viewer.request({"type": "vote", "poll_id": poll_id, "option": 0}, "error")
        assert late["code"] == "not_found"
        await asyncio.sleep(1.2 * UNIT)  # two more sweeps on each process: closed once
        closes = [m for m in watcher_b.of_type("poll") if m["status"] == "closed"]
        assert len(closes) == 1 and latest(watcher_b) == closes[0]
        await late_viewer.close()
    finally:
        await asyncio.gather(*(c.close() for c in (host, watcher_b, *voters)))


async def test_bad_votes_change_nothing(two_servers: tuple[RunningServer, RunningServer]) -> None:
    a, _ = two_servers
    host = await Client.connect(a.ws_url(ROOM))
    await host.hello(token("broadcaster", "host1", ROOM))
    viewer = await Client.connect(a.ws_url(ROOM))
    await viewer.hello(token(user="v1"))
    anon = await Client.connect(a.ws_url(ROOM))
    await anon.hello(None)
    try:
        refused = await viewer.request(
            {"type": "poll_start", "question": "?", "options": ["a", "b"], "duration_s": 10},
            "error",
        )
        assert refused["code"] == "forbidden"
        one_option = await host.request(
            {"type": "poll_start", "question": "?", "options": ["a"], "duration_s": 10}, "error"
        )
        assert one_option["code"] == "bad_message"
        start = len(host.received)
        await host.send(
            {"type": "poll_start", "question": "?", "options": ["a", "b"], "duration_s": 10}
        )
        poll_id = (await host.wait_for(lambda m: m["type"] == "poll", start=start))["poll_id"]
        out = await viewer.request({"type": "vote", "poll_id": poll_id, "option": 2}, "error")
        assert out["code"] == "out_of_range"
        unknown = await viewer.request({"type": "vote", "poll_id": "nope", "option": 0}, "error")
        assert unknown["code"] == "not_found"
        signed_out = await anon.request({"type": "vote", "poll_id": poll_id, "option": 0}, "error")
        assert signed_out["code"] == "unauthorized"
        await viewer.send({"type": "vote", "poll_id": poll_id, "option": 1})
        shown = await host.wait_for(
            lambda m: m["type"] == "poll" and sum(m["counts"]) > 0, timeout=3.0
        )
        assert shown["counts"] == [0, 1]
    finally:
        await asyncio.gather(host.close(), viewer.close(), anon.close())


async def test_a_poll_won_by_a_product_in_stock_gives_the_host_a_hint(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    host = await Client.connect(a.ws_url(ROOM))
    await host.hello(token("broadcaster", "host1", ROOM))
    viewer = await Client.connect(b.ws_url(ROOM))
    await viewer.hello(token(user="v1"))
    try:
        start = len(host.received)
        await host.send(
            {
                "type": "poll_start",
                "question": "下一个?",
                "options": ["芒果", "荔枝"],
                "duration_s": 10,
            }
        )
        poll_id = (await host.wait_for(lambda m: m["type"] == "poll", start=start))["poll_id"]
        await viewer.send({"type": "vote", "poll_id": poll_id, "option": 1})
        hint = await host.wait_for(
            lambda m: m["type"] == "hint" and m["code"] == "poll_winner", timeout=20.0
        )
        assert hint["sku"] == "lychee-500g" and "荔枝" in hint["text"]
        assert hint["severity"] == "act_now"
    finally:
        await asyncio.gather(host.close(), viewer.close())
