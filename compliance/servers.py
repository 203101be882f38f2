"""The two echo servers under test: liveshop's own wire (frames.Splitter and websockets'
ServerProtocol, as room sockets get them) and uvicorn's stock `websockets-sansio`
implementation (what room sockets on the HTTP port get). Echo servers only, on
127.0.0.1; nothing of liveshop's rooms or protocol is involved."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from liveshop.realtime.frames import Frame, binary_frame
from liveshop.realtime.wire import Accept, Refusal, RoomWire, Upgrade, WireOptions, WireServer

MAX_MESSAGE = 16 * 1024 * 1024  # uvicorn's default ws_max_size: the same limit for both


async def echo(wire: RoomWire) -> None:
    """Every message back as it came: text as text, binary as binary."""
    while (message := await wire.receive()) is not None:
        if isinstance(message, str):
            wire.write(Frame.of(None, message))
        else:
            wire.write(Frame(None, "", binary_frame(message)))


def accept_all(request: Upgrade) -> Refusal | Accept:
    return echo


def bind() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def asgi_echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        return
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif event["type"] == "websocket.receive":
            if event.get("text") is not None:
                await send({"type": "websocket.send", "text": event["text"]})
            else:
                await send({"type": "websocket.send", "bytes": event.get("bytes") or b""})
        else:
            return


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[dict[str, int]]:
    """Both echo servers; yields {agent: port}."""
    wire_sock, stock_sock = bind(), bind()
    wire = WireServer(accept_all, WireOptions(max_frame=MAX_MESSAGE))
    await wire.start(wire_sock)
    config = uvicorn.Config(
        asgi_echo,
        ws="websockets-sansio",
        ws_max_size=MAX_MESSAGE,
        ws_per_message_deflate=False,  # the wire has no compression either
        lifespan="off",
        log_level="error",
    )
    stock = uvicorn.Server(config)
    task = asyncio.create_task(stock.serve(sockets=[stock_sock]))
    try:
        yield {
            "liveshop-wire": wire_sock.getsockname()[1],
            "uvicorn-websockets-sansio": stock_sock.getsockname()[1],
        }
    finally:
        stock.should_exit = True  # uvicorn's stop flag (no documented stop method)
        await asyncio.gather(task, return_exceptions=True)
        await wire.aclose(2.0)
