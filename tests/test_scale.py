"""Several server processes on one Redis: shared stock, one viewer count, fan-out
across processes through the room channel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from liveshop.inventory import Inventory
from liveshop.rooms import Rooms
from tests.conftest import ROOM
from tests.support import Client, ServerProcess, token

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
