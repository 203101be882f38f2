"""Kill -9 in the middle of a flash sale: every acknowledged order survives, exactly
once, and stock + sold == stocked. Real server subprocess, real embedded engine."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import pytest
import websockets
from redis.asyncio import Redis

from liveshop.core.keys import RoomKeys
from liveshop.engine.embedded import EmbeddedEngine
from tests.support import UNIT, Client, ServerProcess, eventually, token

pytestmark = pytest.mark.slow
ROOM = "s001"  # the demo room: lychee-500g has 200 units


def stored_orders(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        sql = "SELECT order_id, qty FROM orders WHERE room_id = ?"
        return conn.execute(sql, (ROOM,)).fetchall()


async def test_sigkill_mid_sale_loses_no_acknowledged_order(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, demo=True).start()
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
    server = ServerProcess(data, demo=True, port=server.port, wire_port=server.wire_port).start()
    try:
        db = data / "liveshop.db"

        def all_acked_stored() -> list[tuple[str, int]] | None:
            rows = stored_orders(db)
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
            # stored too: SQLite ends up with exactly what was sold.
            await eventually(lambda: sum(q for _, q in stored_orders(db)) == sold, timeout=30)
        finally:
            await redis.aclose()
    finally:
        server.stop()
    # no engine is left behind once the server has stopped
    assert not EmbeddedEngine(data).pidfile.exists() or not _engine_alive(data)


def _engine_alive(data: Path) -> bool:
    from liveshop.engine.embedded import ping_unix

    return ping_unix(EmbeddedEngine(data).socket_path)
