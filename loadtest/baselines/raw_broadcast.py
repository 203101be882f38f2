"""Raw broadcast: a bare `websockets` server, one room, `broadcast()` for fan-out.

The ceiling of fan-out in Python here: no Redis, no queues, no coalescing; a restock
is turned into the same stock message liveshop sends and written to every socket at
once. Run: python -m loadtest.baselines.raw_broadcast --port 8101 --data-dir /tmp/x
"""

from __future__ import annotations

import asyncio
import http
import signal

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

from loadtest.baselines.common import dumps, parser, stock_text, welcome
from loadtest.viewer import loop_factory


class Room:
    def __init__(self, skus: int) -> None:
        self.sockets: set[ServerConnection] = set()
        self.seq = 0
        self.stock = {f"fan-{i:02d}": 0 for i in range(skus)}

    async def handler(self, ws: ServerConnection) -> None:
        try:
            async for raw in ws:
                msg = orjson.loads(raw)
                kind = msg.get("type")
                if kind == "hello":
                    await ws.send(dumps(welcome("s001", self.seq, self.stock, len(self.sockets))))
                    self.sockets.add(ws)
                elif kind == "restock":
                    sku = msg["sku"]
                    self.stock[sku] = left = self.stock.get(sku, 0) + msg["qty"]
                    self.seq += 1
                    broadcast(self.sockets, stock_text(sku, left, self.seq))
                elif kind == "ping":
                    await ws.send(dumps({"type": "pong", "t": msg.get("t")}))
        except Exception:  # a viewer that goes away mid-message is not our problem here
            pass
        finally:
            self.sockets.discard(ws)


def ready(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/readyz":
        return connection.respond(http.HTTPStatus.OK, "ok\n")
    return None


async def main() -> None:
    args = parser(__doc__ or "").parse_args()
    room = Room(args.skus)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        room.handler,
        "127.0.0.1",
        args.port,
        process_request=ready,
        compression=None,
        max_size=64 * 1024,
        ping_interval=20,
        ping_timeout=20,
        backlog=4096,
    ):
        await stop


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory()) as runner:  # uvloop, as uvicorn runs
        runner.run(main())
