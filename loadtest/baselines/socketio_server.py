"""python-socketio baseline: ASGI on uvicorn (the same uvicorn settings as liveshop),
with `AsyncRedisManager` on its own embedded engine, as a team would deploy it to fan
out across processes. Events carry liveshop's message objects unchanged.

Run: python -m loadtest.baselines.socketio_server --port 8102 --data-dir /tmp/x
"""

from __future__ import annotations

from typing import Any

import socketio  # type: ignore[import-untyped]
import uvicorn

from liveshop.engine.embedded import EmbeddedEngine
from loadtest.baselines.common import now_ms, parser, welcome

ROOM = "s001"


def build(redis_url: str, skus: int) -> Any:
    mgr = socketio.AsyncRedisManager(redis_url, channel="loadtest-socketio")
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=mgr,
        ping_interval=20,
        ping_timeout=20,
        cors_allowed_origins="*",
        logger=False,
        engineio_logger=False,
    )
    stock = {f"fan-{i:02d}": 0 for i in range(skus)}
    seq = [0]
    viewers = [0]

    @sio.on("hello")  # type: ignore[untyped-decorator]
    async def hello(sid: str, data: Any) -> None:
        await sio.enter_room(sid, ROOM)
        viewers[0] += 1
        await sio.emit("welcome", welcome(ROOM, seq[0], stock, viewers[0]), to=sid)

    @sio.on("restock")  # type: ignore[untyped-decorator]
    async def restock(sid: str, data: dict[str, Any]) -> None:
        sku = data["sku"]
        stock[sku] = left = stock.get(sku, 0) + data["qty"]
        seq[0] += 1
        msg = {"type": "stock", "sku": sku, "left": left, "seq": seq[0], "ts": now_ms()}
        await sio.emit("stock", msg, room=ROOM)

    @sio.on("disconnect")  # type: ignore[untyped-decorator]
    async def gone(sid: str, *args: Any) -> None:
        viewers[0] -= 1

    async def other(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok\n"})

    return socketio.ASGIApp(sio, other_asgi_app=other)


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    with EmbeddedEngine(args.data_dir, durability="fast") as engine:
        config = uvicorn.Config(
            build(engine.url, args.skus),
            host="127.0.0.1",
            port=args.port,
            ws="websockets-sansio",
            ws_max_size=64 * 1024,
            ws_per_message_deflate=False,
            log_level="warning",
            access_log=False,
            lifespan="on",
            backlog=4096,
        )
        uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
