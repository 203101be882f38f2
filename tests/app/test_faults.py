"""Faults: the engine dies and returns mid-sale, the server shuts down mid-sale, a
flood of sockets from one address. Real engine processes, real sockets."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import websockets
from redis.asyncio import Redis

from liveshop.core.keys import RoomKeys
from liveshop.engine.embedded import EmbeddedEngine
from tests.conftest import ROOM, seed_room, seeded_server
from tests.databases import order_rows
from tests.support import Client, RunningServer, eventually, settings_for, token

pytestmark = pytest.mark.slow


@pytest.fixture
async def own_engine(tmp_path: Path) -> AsyncIterator[EmbeddedEngine]:
    """An engine of this test's own, so the test may kill it."""
    engine = EmbeddedEngine(tmp_path / "engine-data")
    engine.start()
    yield engine
    engine.stop()


async def _ids_in_outbox_or_db(redis: Redis, srv: RunningServer) -> set[str]:
    entries = await redis.xrange(RoomKeys.of(ROOM).outbox)
    # an entry carries the order's JSON in `o` (a refund entry names its order_id; a
    # session's or group's webhook entry names none)
    ids = {
        json.loads(fields[b"o"])["order_id"] if b"o" in fields else fields[b"order_id"].decode()
        for _, fields in entries
        if b"o" in fields or b"order_id" in fields
    }
    assert srv.runtime.orders is not None
    ids |= {o.order_id for o in await srv.runtime.orders.list(room_id=ROOM, limit=100_000)}
    return ids


async def test_engine_killed_and_restarted_during_a_sale(
    own_engine: EmbeddedEngine, tmp_path: Path
) -> None:
    srv = await RunningServer(settings_for(own_engine.url, tmp_path)).start()
    services = srv.runtime.services
    assert services is not None
    await seed_room(services.rooms, services.inventory, stock={"lychee-500g": 10_000})
    buyers = [await Client.connect(srv.ws_url(ROOM)) for _ in range(8)]
    for i, b in enumerate(buyers):
        await b.hello(token(user=f"f{i}"))
    accepted: list[str] = []
    unavailable = 0
    stop = asyncio.Event()

    async def shop(i: int, c: Client) -> None:
        nonlocal unavailable
        n = 0
        while not stop.is_set():
            n += 1
            started = asyncio.get_running_loop().time()
            reply = await c.request(
                {"type": "buy", "request_id": f"{i}-{n}", "sku": "lychee-500g", "qty": 1},
                "order_ack",
                timeout=5,
            )
            # every purchase is answered within about a second, never a hang
            assert asyncio.get_running_loop().time() - started < 2.5
            if reply["type"] == "order_ack" and reply["status"] == "accepted":
                accepted.append(reply["order_id"])
            elif reply["type"] == "error":
                assert reply["code"] == "unavailable" and reply["ref"] == f"{i}-{n}"
                unavailable += 1
                await asyncio.sleep(0.05)

    shoppers = [asyncio.create_task(shop(i, c)) for i, c in enumerate(buyers)]
    try:
        await eventually(lambda: len(accepted) >= 50, timeout=10)
        assert own_engine._process is not None
        own_engine._process.send_signal(signal.SIGKILL)
        own_engine._process.wait()
        acked_before_restart = list(accepted)
        await eventually(lambda: unavailable >= 5, timeout=10)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{srv.http}/readyz")).status_code == 503
            own_engine.stop()  # releases the data-dir lock of the killed engine
            own_engine.start()  # replays the AOF
            await eventually(lambda: len(accepted) >= len(acked_before_restart) + 50, timeout=20)
            ready = await http.get(f"{srv.http}/readyz")
            assert ready.status_code == 200
            assert ready.json() == {
                "ready": True,
                "redis": True,
                "database": True,
                "persister": True,
                "reconciliation": {"alarms": {}},
            }
        stop.set()
        await asyncio.gather(*shoppers)
        assert all(not b.closed.is_set() for b in buyers)  # sockets stayed open throughout

        redis = Redis.from_url(own_engine.url)
        try:
            # No acknowledged order is missing after the restart.
            stored = await _ids_in_outbox_or_db(redis, srv)
            assert set(accepted) <= stored
            left, _held, sold, stocked = (await services.inventory.ledger(ROOM))["lychee-500g"]
            assert left + sold == stocked == 10_000
            assert sold >= len(accepted)
        finally:
            await redis.aclose()
    finally:
        # a failure above must not leave shoppers and a server running into the next test
        stop.set()
        for task in shoppers:
            task.cancel()
        await asyncio.gather(*shoppers, return_exceptions=True)
        for b in buyers:
            await b.close()
        await srv.stop()


async def test_viewers_receive_what_was_published_while_pubsub_was_down(
    own_engine: EmbeddedEngine, tmp_path: Path
) -> None:
    async with seeded_server(settings_for(own_engine.url, tmp_path)) as srv:
        services = srv.runtime.services
        assert services is not None
        viewer = await Client.connect(srv.ws_url(ROOM))
        await viewer.hello()
        redis = Redis.from_url(own_engine.url)
        try:
            # Cut only the server's pub/sub connection, then change stock meanwhile.
            clients = await redis.client_list(_type="pubsub")
            assert clients
            for c in clients:
                await redis.client_kill_filter(_id=c["id"])
            for delta in (1, 2, 3):
                await services.inventory.restock(ROOM, "mango-2pc", delta)
            await viewer.wait_for(lambda m: m["type"] == "stock" and m["left"] == 126, timeout=10)
            seqs = [m["seq"] for m in viewer.received if "seq" in m]
            assert seqs == sorted(set(seqs))
        finally:
            await redis.aclose()
            await viewer.close()


async def test_graceful_shutdown_answers_every_buyer_and_stores_every_order(
    server: RunningServer, redis: Redis
) -> None:
    services = server.runtime.services
    assert services is not None
    await services.inventory.put_product(ROOM, "big", name="大西瓜", price=2990, stock=100_000)
    buyers = [await Client.connect(server.ws_url(ROOM)) for _ in range(20)]
    for i, b in enumerate(buyers):
        await b.hello(token(user=f"g{i}"))
    sent = [0] * len(buyers)

    async def shop(i: int, c: Client) -> None:
        try:
            for n in range(10_000):
                await c.send({"type": "buy", "request_id": f"{i}-{n}", "sku": "big", "qty": 1})
                sent[i] += 1
                await c.wait_for(
                    lambda m, n=n: m.get("request_id") == f"{i}-{n}" or m["type"] == "bye",
                    timeout=5,
                )
                if c.of_type("bye"):
                    return
        except (ConnectionError, websockets.ConnectionClosed):
            return

    shoppers = [asyncio.create_task(shop(i, c)) for i, c in enumerate(buyers)]
    await eventually(lambda: sum(sent) >= 200, timeout=10)
    await server.stop()  # what SIGTERM does
    await asyncio.gather(*shoppers)
    accepted = []
    for i, b in enumerate(buyers):
        assert b.of_type("bye") == [{"type": "bye", "reason": "server_shutdown"}]
        acks = b.of_type("order_ack")
        # every request that reached the server before its bye was answered
        answered = {a["request_id"] for a in acks}
        assert len(answered) >= sent[i] - 1
        accepted += [a["order_id"] for a in acks if a["status"] == "accepted"]
        assert b.ws.close_code == 1001
    assert len(accepted) >= 200 - len(buyers)
    # The persister flushed the outbox before the server let go of the engine.
    stored = {o for o, _ in await order_rows(server.settings.database, ROOM)}
    assert set(accepted) <= stored
    keys = RoomKeys.of(ROOM)  # the server is gone: read the engine directly
    left, sold, stocked = [
        int(await redis.hget(k, "big")) for k in (keys.stock, keys.sold, keys.stocked)
    ]
    assert sold == len(stored) and left + sold == stocked


async def test_sockets_beyond_the_per_address_cap_are_refused_with_429(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    settings = settings_for(
        redis_url, tmp_path, max_sockets_per_ip=3, limit_loopback=True, max_sockets=5
    )
    srv = await RunningServer(settings).start()
    try:
        assert srv.runtime.services is not None
        await seed_room(srv.runtime.services.rooms, srv.runtime.services.inventory)
        kept = [await Client.connect(srv.ws_url(ROOM)) for _ in range(3)]
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(srv.ws_url(ROOM))
        assert info.value.response.status_code == 429
        assert b"rate_limited" in info.value.response.body
        await kept[0].close()
        await eventually(lambda: srv.runtime.gateway.admission.open_total == 2)  # type: ignore[union-attr]
        again = await Client.connect(srv.ws_url(ROOM))
        assert (await again.hello())["type"] == "welcome"
        for c in [*kept[1:], again]:
            await c.close()
    finally:
        await srv.stop()


async def test_pubsub_cut_while_publishing_loses_nothing_and_repeats_nothing(
    own_engine: EmbeddedEngine, tmp_path: Path
) -> None:
    """The hub's pub/sub connection is killed (CLIENT KILL TYPE pubsub) again and again
    while chat messages, never coalesced, are published: every socket gets every seq
    once, in order, or is told to resync."""
    async with seeded_server(settings_for(own_engine.url, tmp_path)) as srv:
        redis = Redis.from_url(own_engine.url)
        try:

            async def kill() -> int:
                return int(await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub"))

            await cut_pubsub_while_chatting(srv, kill)
        finally:
            await redis.aclose()


async def cut_pubsub_while_chatting(srv: RunningServer, kill: Callable[[], Awaitable[int]]) -> None:
    """Four viewers; 400 chat messages published 2 ms apart while `kill` cuts the
    server's pub/sub connections every 80 ms. Also run on a Cluster (test_scale.py)."""
    services = srv.runtime.services
    assert services is not None
    viewers = [await Client.connect(srv.ws_url(ROOM)) for _ in range(4)]
    published: list[int] = []
    done = asyncio.Event()

    async def publish() -> None:
        for i in range(400):
            published.append(await services.rooms.chat(ROOM, "u1", f"m{i}"))
            await asyncio.sleep(0.002)
        done.set()

    try:
        for v in viewers:
            assert (await v.hello())["type"] == "welcome"
        publisher = asyncio.create_task(publish())
        kills = 0
        while not done.is_set():
            await asyncio.sleep(0.08)
            kills += await kill()
        await publisher
        assert kills >= 3  # the hub's connection really was cut, mid-stream

        def caught_up(v: Client) -> bool:
            seqs = [m["seq"] for m in v.of_type("chat")]
            return v.closed.is_set() or (bool(seqs) and seqs[-1] == published[-1])

        await eventually(lambda: all(caught_up(v) for v in viewers), timeout=15)
        for v in viewers:
            seqs = [m["seq"] for m in v.of_type("chat")]
            if v.closed.is_set():  # a gap the history could not fill: told to resync
                assert v.ws.close_reason == "resync" or v.of_type("bye")
                assert seqs == sorted(set(seqs))
            else:
                assert seqs == published  # every one, once, in order
    finally:
        for v in viewers:
            await v.close()
