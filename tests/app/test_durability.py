"""Kill -9 in the middle of a flash sale: every acknowledged order survives, exactly
once, and stock + sold == stocked. Real server subprocess, real embedded engine."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable
from pathlib import Path

import pytest
import websockets
from redis.asyncio import Redis

from liveshop.core.keys import RoomKeys
from liveshop.engine.embedded import EmbeddedEngine
from tests.databases import database_for_test, order_rows
from tests.support import UNIT, Client, ServerProcess, eventually, token

pytestmark = pytest.mark.slow
ROOM = "s001"  # the demo room: lychee-500g has 200 units


async def test_sigkill_mid_sale_loses_no_acknowledged_order(tmp_path: Path) -> None:
    async with database_for_test(tmp_path / "data") as database_url:
        await sigkill_mid_sale(tmp_path / "data", database_url)


async def sigkill_mid_sale(data: Path, database_url: str) -> None:
    env = {"LIVESHOP_DATABASE_URL": database_url}
    server = ServerProcess(data, demo=True, extra_env=env).start()
    acked: list[str] = []
    try:
        buyers = await asyncio.gather(*(Client.connect(server.ws_url(ROOM)) for _ in range(40)))
        for i, b in enumerate(buyers):
            await b.hello(token(user=f"k{i}"))

        async def keep_buying(i: int, c: Client) -> None:
            for n in range(1000):
                try:
                    ack = await c.request(
                        {"type": "buy", "request_id": f"{i}-{n}", "sku": "lychee-500g", "qty": 1},
                        "order_ack",
                        5,
                    )
                except (ConnectionError, TimeoutError, OSError, websockets.ConnectionClosed):
                    return
                if ack.get("status") == "accepted":
                    acked.append(ack["order_id"])
                    # Paced: the 200 units must outlast the moment of the kill (fast
                    # buyers once sold them all before it: nothing was killed mid-sale).
                    await asyncio.sleep(0.05)
                elif ack["type"] != "order_ack" or ack.get("reason") == "sold_out":
                    return

        shoppers = [asyncio.create_task(keep_buying(i, c)) for i, c in enumerate(buyers)]
        await eventually(lambda: len(acked) >= 60, timeout=20)
        # SIGKILL the engine and the server together: no shutdown code runs anywhere,
        # the engine's state comes back from its AOF alone.
        engine_pid = int(EmbeddedEngine(data).pidfile.read_text())
        os.kill(engine_pid, signal.SIGKILL)
        server.kill()
        await asyncio.wait_for(asyncio.gather(*shoppers), 30 * UNIT)
        assert 60 <= len(acked) < 200
        for b in buyers:
            await b.close()
    finally:
        server.stop()

    # Restart on the same data directory: the engine replays its AOF, the persister
    # takes over what the dead one had read but not stored.
    server = ServerProcess(
        data, demo=True, port=server.port, wire_port=server.wire_port, extra_env=env
    ).start()
    try:

        async def all_acked_stored() -> list[tuple[str, int]] | None:
            rows = await order_rows(database_url, ROOM)
            return rows if {o for o, _ in rows} >= set(acked) else None

        rows = await eventually(all_acked_stored, timeout=30)
        ids = [o for o, _ in rows]
        assert len(ids) == len(set(ids))  # exactly once
        assert set(acked) <= set(ids)  # every acknowledged order survived
        redis = Redis.from_url(EmbeddedEngine(data).url)
        try:
            keys = RoomKeys.of(ROOM)
            left = int(await redis.hget(keys.stock, "lychee-500g"))
            sold = int(await redis.hget(keys.sold, "lychee-500g"))
            stocked = int(await redis.hget(keys.stocked, "lychee-500g"))
            assert left + sold == stocked == 200

            # Orders the engine accepted but whose ack never left the dead server are
            # stored too: the database ends up with exactly what was sold.
            async def units_stored() -> int:
                return sum(q for _, q in await order_rows(database_url, ROOM))

            await eventually(lambda: _equals(units_stored(), sold), timeout=30)
        finally:
            await redis.aclose()
    finally:
        server.stop()
    # no engine is left behind once the server has stopped
    assert not EmbeddedEngine(data).pidfile.exists() or not _engine_alive(data)


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


def _engine_alive(data: Path) -> bool:
    from liveshop.engine.embedded import ping_unix

    return ping_unix(EmbeddedEngine(data).socket_path)
