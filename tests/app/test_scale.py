"""Several server processes on one Redis: shared stock, one viewer count, fan-out
across processes through the room channel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import httpx
import pytest
import websockets
from redis.asyncio import Redis

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.rooms import Rooms
from liveshop.core.keys import RoomKeys
from tests.app.test_faults import cut_pubsub_while_chatting
from tests.cluster import LocalCluster
from tests.commerce.test_flash_sale import flash_sale_50_of_500
from tests.conftest import ROOM, seed_room
from tests.support import Client, RunningServer, ServerProcess, eventually, token

pytestmark = pytest.mark.slow


async def test_two_processes_share_stock_and_viewer_count(
    domain: tuple[Rooms, Inventory], redis_url: str, tmp_path: Path
) -> None:
    a = ServerProcess(tmp_path / "a", redis_url=redis_url).start()
    b = ServerProcess(tmp_path / "b", redis_url=redis_url).start()
    try:
        buyer = await Client.connect(a.ws_url(ROOM))
        viewer_a = await Client.connect(a.ws_url(ROOM))
        viewer_b = await Client.connect(b.ws_url(ROOM))
        await buyer.hello(token(user="buyer"))
        await viewer_a.hello()
        await viewer_b.hello()
        ack = await buyer.request(
            {"type": "buy", "request_id": "x", "sku": "lychee-500g", "qty": 4}, "order_ack"
        )
        assert ack["status"] == "accepted"
        stock = await viewer_b.wait_for(lambda m: m["type"] == "stock")
        assert (stock["sku"], stock["left"]) == ("lychee-500g", 196)
        # three viewer sockets over two processes make one count, seen on both
        for c in (viewer_a, viewer_b):
            await c.wait_for(lambda m: m["type"] == "viewers" and m["count"] == 3, timeout=5)
        await viewer_a.close()
        await viewer_b.wait_for(lambda m: m["type"] == "viewers" and m["count"] == 2, timeout=5)
        # a process that dies without a word drops out of the count by itself
        a.kill()
        await viewer_b.wait_for(lambda m: m["type"] == "viewers" and m["count"] == 1, timeout=10)
        await asyncio.gather(buyer.close(), viewer_b.close())
    finally:
        a.stop()
        b.stop()


class ResumingViewer:
    """A viewer that, when its server goes away, reconnects to another one with
    `resume_from` and checks the replay: every missed message, in order, once."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.connections: list[Client] = []
        self.resumes = 0

    @property
    def client(self) -> Client:
        return self.connections[-1]

    def last_stock(self, sku: str) -> int | None:
        stocks = [
            m["left"]
            for c in self.connections
            for m in c.received
            if m["type"] == "stock" and m["sku"] == sku
        ]
        return stocks[-1] if stocks else None

    def seqs(self) -> list[int]:
        """Room-message seqs over every connection, in arrival order."""
        return [
            m["seq"]
            for c in self.connections
            for m in c.received
            if "seq" in m and m["type"] != "welcome"
        ]

    async def connect(self, index: int) -> None:
        last = self.seqs()[-1] if self.connections else None
        client = await Client.connect(self.urls[index % len(self.urls)])
        welcome = await client.hello(None, **({"resume_from": last} if last else {}))
        assert welcome["type"] == "welcome", welcome
        self.connections.append(client)
        if last is not None:
            assert welcome["resumed"] is True
            self.resumes += 1
            if welcome["seq"] > last:
                await client.wait_for(lambda m: m.get("seq") == welcome["seq"], start=1)
            got = [m["seq"] for m in client.received[1:] if "seq" in m]
            # the replay is exactly the missed range; the live stream continues after it
            assert got[: welcome["seq"] - last] == list(range(last + 1, welcome["seq"] + 1))


async def test_three_processes_flash_sale_and_one_killed_midway(
    domain: tuple[Rooms, Inventory], redis_url: str, tmp_path: Path
) -> None:
    _, inv = domain
    await inv.put_product(ROOM, "flash", name="秒杀荔枝", price=990, stock=60)
    procs = [ServerProcess(tmp_path / f"p{i}", redis_url=redis_url).start() for i in range(3)]
    urls = [p.ws_url(ROOM) for p in procs]
    try:
        viewers = [ResumingViewer(urls) for _ in range(30)]
        for i, v in enumerate(viewers):
            await v.connect(i)
        buyers = []
        for i in range(150):
            c = await Client.connect(urls[i % 3])
            await c.hello(token(user=f"m{i}"))
            buyers.append(c)
        # 30 viewers and 150 buyers over three processes make one count
        await viewers[1].client.wait_for(
            lambda m: m["type"] == "viewers" and m["count"] == 180, timeout=10
        )

        answers: dict[int, dict[str, object]] = {}

        async def buy(i: int) -> None:
            msg = {"type": "buy", "request_id": "tap", "sku": "flash", "qty": 1}
            try:
                answers[i] = await buyers[i].request(msg, "order_ack", timeout=10)
            except (ConnectionError, websockets.ConnectionClosed, TimeoutError):
                # its server died with the request in flight: retry the same request
                # elsewhere; idempotency returns the first answer if there was one
                retry = await Client.connect(urls[(i % 3 + 1) % 3])
                await retry.hello(token(user=f"m{i}"))
                answers[i] = await retry.request(msg, "order_ack", timeout=10)
                await retry.close()

        sale = [asyncio.create_task(buy(i)) for i in range(150)]
        await asyncio.sleep(0.05)
        procs[0].kill()  # SIGKILL mid-sale
        await asyncio.gather(*sale)
        # viewers of the dead process reconnect elsewhere and resume
        for i, v in enumerate(viewers):
            if i % 3 == 0:
                await asyncio.wait_for(v.client.closed.wait(), 10)
                await v.connect(i + 1)
        accepted = [a for a in answers.values() if a.get("status") == "accepted"]
        assert len(accepted) == 60
        assert len({a["order_id"] for a in accepted}) == 60
        assert (await inv.ledger(ROOM))["flash"] == (0, 0, 60, 60)
        for v in viewers:  # the last word on the SKU, over all its connections, is 0
            await eventually(lambda v=v: v.last_stock("flash") == 0, timeout=10)
            seqs = v.seqs()
            assert seqs == sorted(set(seqs)), "a message duplicated or out of order"
        assert sum(v.resumes for v in viewers) == 10
        # the dead process's sockets leave the count within the presence TTL (5 s)
        alive = sum(1 for i in range(150) if i % 3 != 0 and not buyers[i].closed.is_set())
        await viewers[1].client.wait_for(
            lambda m: m["type"] == "viewers" and m["count"] == 30 + alive, timeout=10
        )
        for c in buyers:
            await c.close()
        for v in viewers:
            await v.client.close()
    finally:
        for p in procs:
            p.stop()


async def test_flash_sale_on_a_three_master_cluster(cluster_server: RunningServer) -> None:
    """The same flash sale as tests/test_flash_sale.py, unchanged, on a Redis Cluster."""
    services = cluster_server.runtime.services
    assert services is not None
    await flash_sale_50_of_500(cluster_server)
    # the room's keys all live in one slot; other rooms spread over the shards
    from redis.asyncio.cluster import RedisCluster

    redis = cluster_server.runtime.redis
    assert isinstance(redis, RedisCluster)
    slots = {redis.keyslot(k) for k in ("ls:{s001}:stock", "ls:{s001}:outbox", "ls:{s001}:seq")}
    assert len(slots) == 1


async def test_sharded_pubsub_cut_on_every_shard_while_publishing(
    cluster_server: RunningServer, redis_cluster: LocalCluster
) -> None:
    """test_faults' pub/sub cut on a Cluster: every primary kills its pub/sub clients."""

    async def kill() -> int:
        killed = 0
        for port in redis_cluster.ports:
            async with Redis(host="127.0.0.1", port=port) as node:
                killed += int(await node.execute_command("CLIENT", "KILL", "TYPE", "pubsub"))
        return killed

    await cut_pubsub_while_chatting(cluster_server, kill)


async def test_orders_of_rooms_on_different_shards_reach_sqlite(
    cluster_server: RunningServer, redis_cluster: LocalCluster
) -> None:
    """The reported bug: one server on a Cluster, two rooms whose hash tags live on
    different shards, five purchases in each; every acked order reaches SQLite."""
    services = cluster_server.runtime.services
    orders = cluster_server.runtime.orders
    assert services is not None and orders is not None
    other = next(
        f"s{i:03d}"
        for i in range(2, 999)
        if redis_cluster.shard_of(RoomKeys.of(f"s{i:03d}").outbox)
        != redis_cluster.shard_of(RoomKeys.of(ROOM).outbox)
    )
    await seed_room(services.rooms, services.inventory, other)
    acked = []
    for room in (ROOM, other):
        buyer = await Client.connect(cluster_server.ws_url(room))
        await buyer.hello(token(user=f"b-{room}"))
        for n in range(5):
            ack = await buyer.request(
                {"type": "buy", "request_id": f"t{n}", "sku": "lychee-500g", "qty": 1},
                "order_ack",
            )
            assert ack["status"] == "accepted"
            acked.append(ack["order_id"])
        await buyer.close()

    async def stored() -> list[str]:
        return [o.order_id for o in await orders.list(limit=100)]

    await eventually(lambda: _has(stored(), len(acked)), timeout=10)
    assert sorted(await stored()) == sorted(acked)


async def _has(ids: Awaitable[list[str]], n: int) -> bool:
    return len(await ids) >= n


async def test_workers_share_one_port_and_one_engine(tmp_path: Path) -> None:
    from liveshop.engine.embedded import EmbeddedEngine, ping_unix

    data = tmp_path / "data"
    server = ServerProcess(data, demo=True, extra_args=["--workers", "3"]).start()
    try:
        redis = Redis.from_url(EmbeddedEngine(data).url)
        try:
            # The workers start one after another; the kernel spreads new connections
            # over those listening (SO_REUSEPORT). Reconnect until all three report.
            viewers: list[Client] = []
            for _ in range(20):
                for c in viewers:
                    await c.close()
                viewers = [await Client.connect(server.ws_url(ROOM)) for _ in range(30)]
                for v in viewers:
                    await v.hello()
                await viewers[0].wait_for(lambda m: m["type"] == "viewers" and m["count"] == 30, 10)
                reporting = await redis.hvals(RoomKeys.of(ROOM).presence)
                if len(reporting) == 3:
                    break
            assert len(reporting) == 3 and sum(int(n) for n in reporting) == 30
            # one scrape of any worker sums every worker (prometheus multiprocess mode)
            async with httpx.AsyncClient() as http:
                scrape = (await http.get(f"http://127.0.0.1:{server.port}/metrics")).text
            assert 'liveshop_connections{role="viewer"} 30.0' in scrape
        finally:
            await redis.aclose()
        buyer = await Client.connect(server.ws_url(ROOM))
        await buyer.hello(token(user="w"))
        ack = await buyer.request(
            {"type": "buy", "request_id": "w1", "sku": "lychee-500g", "qty": 1}, "order_ack"
        )
        assert ack["status"] == "accepted"
        for c in [*viewers, buyer]:
            await c.close()
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0
    assert not ping_unix(EmbeddedEngine(data).socket_path)  # the engine stopped last
