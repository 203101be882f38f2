"""`liveshop serve` as operators run it: both ports announced, and SIGTERM stops it in
order (bye `server_shutdown` to room sockets on the wire port and on the HTTP port, then
HTTP, then the runtime), exiting 0 although uvicorn re-raises the signal it captured."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from liveshop.app.demo import DEMO_ROOM
from tests.support import UNIT, Client, ServerProcess, token

pytestmark = pytest.mark.slow


async def test_sigterm_says_bye_on_both_ports_and_exits_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", demo=True).start()
    try:
        banner = server.log.read_text()
        assert f"ws://127.0.0.1:{server.wire_port}/ws/rooms/<room>" in banner
        assert f"ws://127.0.0.1:{server.port}/ws/rooms/<room>" in banner
        on_wire = await Client.connect(server.ws_url(DEMO_ROOM))
        on_http = await Client.connect(server.http_ws_url(DEMO_ROOM))
        for c in (on_wire, on_http):
            assert (await c.hello(token(user="u1")))["type"] == "welcome"
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        for c in (on_wire, on_http):
            bye = await c.wait_for(lambda m: m["type"] == "bye", 10)
            assert bye["reason"] == "server_shutdown"
            await asyncio.wait_for(c.closed.wait(), 10 * UNIT)
        code = await asyncio.to_thread(server.proc.wait, 30 * UNIT)
        assert code == 0, server.log.read_text()[-2000:]
    finally:
        server.stop()
