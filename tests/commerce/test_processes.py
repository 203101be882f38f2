"""Process heartbeats on the real engine: live processes are listed, a silent one drops
out after its TTL by itself, a clean stop leaves at once, the loop-lag meter sees a
blocked loop, and an admin request reaches the process it names and nobody else."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from liveshop import __version__
from liveshop.commerce.processes import (
    LagMeter,
    Processes,
    SocketInfo,
    global_conn_id,
    parse_conn_id,
)
from liveshop.core.keys import PROCESSES
from tests.support import UNIT, eventually


class Sockets:
    """A process's room sockets as plain data (what the gateway and hub report)."""

    def __init__(self, sockets: list[SocketInfo]) -> None:
        self.sockets = sockets
        self.closed: list[tuple[int, str]] = []

    def socket_count(self) -> int:
        return len(self.sockets)

    def local_rooms(self) -> list[str]:
        return sorted({s.room for s in self.sockets})

    def socket_list(self, limit: int) -> list[SocketInfo]:
        return self.sockets[:limit]

    def close_socket(self, conn: int, reason: str) -> bool:
        if any(s.conn == conn for s in self.sockets):
            self.closed.append((conn, reason))
            self.sockets = [s for s in self.sockets if s.conn != conn]
            return True
        return False


def process(redis: Redis, name: str, sockets: Sockets, ttl_s: float = 0.6) -> Processes:
    return Processes(redis, sockets, process_id=name, interval_s=0.1, ttl_s=ttl_s)


async def test_live_processes_are_listed_with_their_figures(redis: Redis) -> None:
    a = process(redis, "host-a:1:aa", Sockets([SocketInfo(7, "s001", "console")]))
    b = process(redis, "host-b:2:bb", Sockets([]))
    await a.beat()
    await b.beat()
    live = {p.process_id: p for p in await a.live()}
    assert set(live) == {"host-a:1:aa", "host-b:2:bb"}
    pa = live["host-a:1:aa"]
    assert (pa.connections, pa.rooms, pa.version) == (1, 1, __version__)
    assert pa.sockets == [SocketInfo(7, "s001", "console")]
    assert pa.heartbeat_at >= pa.started_at
    assert pa.pid > 0 and pa.host


async def test_a_silent_process_drops_out_by_itself_and_a_stopped_one_at_once(
    redis: Redis,
) -> None:
    a = process(redis, "a", Sockets([]))
    b = process(redis, "b", Sockets([]))
    runner = asyncio.create_task(a.run())
    await b.beat()  # b beats once and then "dies": nobody removes it
    await eventually(lambda: _listed(a, {"a", "b"}))
    await eventually(lambda: _listed(a, {"a"}), timeout=3)
    # Its hash expired on the engine's clock; the zset member is only housekeeping.
    assert not await redis.exists("ls:process:b")
    a.stop()
    await runner
    await a.withdraw()
    assert await a.live() == []
    assert await redis.zscore(PROCESSES, "a") is None


async def _listed(p: Processes, ids: set[str]) -> bool:
    return {x.process_id for x in await p.live()} == ids


async def test_a_member_whose_hash_is_gone_is_not_listed(redis: Redis) -> None:
    """Score and TTL both guard: a zset member ahead of now without its hash is dead."""
    await redis.zadd(PROCESSES, {"ghost": time.time() * 1000 + 60_000})
    assert await process(redis, "x", Sockets([])).live() == []


async def test_the_lag_meter_reports_the_worst_block_of_its_interval() -> None:
    meter = LagMeter(every_s=0.01)
    meter.start()
    try:
        await asyncio.sleep(0.05)
        meter.take()
        time.sleep(0.2)  # noqa: ASYNC251 - blocking the loop is what is measured
        await asyncio.sleep(0.03)
        assert meter.take() >= 150
        await asyncio.sleep(0.05 * UNIT)
        assert meter.take() < 150  # the peak belongs to the interval it happened in
    finally:
        meter.stop()


async def test_a_disconnect_request_is_carried_out_by_the_process_it_names(redis: Redis) -> None:
    holder = Sockets([SocketInfo(3, "s001", "viewer"), SocketInfo(4, "s001", "viewer")])
    other = Sockets([SocketInfo(3, "s002", "viewer")])
    a = process(redis, "a", holder)
    b = process(redis, "b", other)
    tasks = [asyncio.create_task(p.run()) for p in (a, b)]
    try:
        assert await b.request_disconnect("a", 3, by="ops-1") == "closed"
        assert holder.closed == [(3, "closed by an operator")]
        assert other.closed == []
        assert await b.request_disconnect("a", 99, by="ops-1") == "not_found"
        # Nobody takes a request for a process that is not there.
        assert await b.request_disconnect("gone", 3, by="ops-1", wait_s=0.3) == "requested"
    finally:
        for p in (a, b):
            p.stop()
        await asyncio.gather(*tasks)


def test_connection_ids_name_the_process_and_round_trip() -> None:
    conn_id = global_conn_id("vm:123:abcdef", 17)
    assert conn_id == "c17@vm:123:abcdef"
    assert parse_conn_id(conn_id) == ("vm:123:abcdef", 17)
    for bad in ("17@vm", "c@vm", "cx@vm", "c1@", "c1"):
        assert parse_conn_id(bad) is None
