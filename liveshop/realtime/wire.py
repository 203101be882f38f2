"""The room-socket server: our own `asyncio.Protocol` over websockets' public sans-I/O
`ServerProtocol`, with direct writes of pre-framed bytes (`Wire`; `asgiwire.AsgiWire` is
the same interface over plain ASGI for any other server).

Owns the socket's bytes: the handshake (through `ServerProtocol`; who may connect is
the handler's decision), frame splitting (`frames.Splitter`), keepalive, the closing
handshake and its timeouts. Knows nothing of rooms or the protocol's messages. The only
module that imports websockets, and only its documented API.

Why the gateway gets an explicit entry and not an ASGI scope: a fake scope would carry
the wire through an untyped dict, cost a dict per message on the hot path, and mean
nothing to any other ASGI server. The handler sees a typed `Upgrade`, answers `Refusal`
or an `Accept` coroutine function that receives this wire (`receive()` for messages).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import http
import random
import socket
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import structlog
from websockets.datastructures import Headers
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from liveshop.realtime.frames import Frame, Splitter, text_frame

__all__ = [
    "Accept",
    "Frame",
    "Handler",
    "Refusal",
    "RoomWire",
    "Upgrade",
    "Wire",
    "WireOptions",
    "WireServer",
    "text_frame",
]

log = structlog.get_logger("liveshop.realtime.wire")
Message = str | bytes  # a text or binary message; None from receive() means gone


class Wire(Protocol):
    """What a room socket needs from its connection."""

    @property
    def open(self) -> bool:
        """False once the close frame is sent or the connection is lost."""
        ...

    @property
    def can_write(self) -> bool:
        """Open, and the transport's buffer is below its high-water mark."""
        ...

    def write(self, frame: Frame) -> None:
        """Write one frame now. Never blocks; buffers even when paused."""

    def write_joined(self, frames: Sequence[Frame], data: bytes) -> None:
        """Write several frames now, `data` being their bytes joined (one syscall)."""

    def on_writable(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a paused transport drains or the connection is lost."""

    def close(self, code: int, reason: str) -> None:
        """Send the close frame now; drop the connection if the peer does not finish the
        closing handshake in time."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A websocket upgrade request, as the handler sees it."""

    path: str  # without the query string
    peer: str  # the TCP peer's address
    headers: tuple[tuple[str, str], ...]  # names lower-cased, in order

    def header(self, name: str) -> str | None:
        """The last value of header `name` (lower case)."""
        value = None
        for key, v in self.headers:
            if key == name:
                value = v
        return value


@dataclass(frozen=True, slots=True)
class Refusal:
    """Answer the upgrade with this HTTP status and body instead of a websocket."""

    status: int
    body: bytes
    content_type: str = "application/json"


Accept = Callable[["RoomWire"], Coroutine[Any, Any, None]]  # run as the socket's task
Handler = Callable[[Upgrade], Refusal | Accept]


@dataclass(frozen=True, slots=True)
class WireOptions:
    max_frame: int = 64 * 1024  # the transport's limit; the app's own (4 KiB) answers first
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    close_timeout_s: float = 5.0  # the peer's close frame, or we abort
    open_timeout_s: float = 10.0  # the whole HTTP request, or we abort
    max_request: int = 16 * 1024  # bytes of HTTP request head


_CONNECTING, _OPEN, _CLOSING, _GONE = 0, 1, 2, 3
_EMPTY_FINAL_CONTINUATION = bytes((0x80, 0x80, 0, 0, 0, 0))  # FIN, CONT, masked, no payload


def _protocol(options: WireOptions, state: State) -> ServerProtocol:
    return ServerProtocol(
        state=state,
        max_size=options.max_frame,
        extensions=None,  # no permessage-deflate: no inflate bombs, no per-socket zlib
    )


class RoomWire(asyncio.Protocol):
    """One websocket connection. Lean per idle socket (thousands of idle viewers): slots,
    no Queue or Event (a Queue is three deques and an Event, ~3 KB), the inbox and the
    fragment buffers exist only while in use, keepalive is swept by the server."""

    __slots__ = (
        "_conn",
        "_decoder",
        "_head",
        "_inbox",
        "_parts",
        "_pending",
        "_read_paused",
        "_resume",
        "_server",
        "_splitter",
        "_state",
        "_task",
        "_timer",
        "_transport",
        "_waiter",
        "_write_paused",
        "peer",
        "ping_at",
        "ping_data",
    )

    def __init__(self, server: WireServer) -> None:
        self._server = server
        self._conn = _protocol(server.options, State.CONNECTING)
        self._transport: asyncio.Transport | None = None
        self._state = _CONNECTING
        self._head: bytes = b""  # the HTTP request head, until whole
        self._splitter: Splitter | None = None
        self._inbox: deque[Message | None] | None = None
        # Frames not judged yet because the handler has unread messages before them.
        self._pending: list[str | bytes] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        self._write_paused = False
        self._resume: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._parts: list[str | bytes] | None = None  # a fragmented message (one kind)
        self._decoder: codecs.IncrementalDecoder | None = None
        self.peer = ""
        self.ping_at = 0.0  # when the last ping went out (or the socket opened)
        self.ping_data: bytes | None = None  # the unanswered ping's payload

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (create_server gives nothing else). Not an isinstance check:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else ""
        self._server.connections.add(self)
        self._timer = self._server.loop.call_later(
            self._server.options.open_timeout_s, transport.abort
        )

    def data_received(self, data: bytes) -> None:
        splitter = self._splitter
        if splitter is None:
            if self._state == _CONNECTING:
                self._handshake(data)
            return  # refused: the response is on its way, the rest is ignored
        items = splitter.feed(data)
        if self._pending is not None:
            self._pending += items
        else:
            self._process(items)
        if (
            self._state == _OPEN  # closing: read on, to the peer's close frame
            and (self._inbox or self._pending)
            and not self._read_paused
            and self._transport is not None
        ):
            # The handler reads one message at a time: let the kernel hold the rest.
            self._read_paused = True
            self._transport.pause_reading()

    def _process(self, items: list[str | bytes]) -> None:
        for i, item in enumerate(items):
            if isinstance(item, str):
                if self._state == _OPEN:
                    self._push(item)
            elif self._inbox and self._state == _OPEN:
                # In stream order: a frame that may fail the connection waits until the
                # handler has taken (and answered) the messages before it.
                self._pending = items[i:]
                return
            else:
                self._parse(item)

    def eof_received(self) -> bool | None:
        self._conn.receive_eof()
        self._events()
        self._send_pending()
        return None  # close our side too

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._resume is not None:
            self._resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _GONE
        self._server.forget(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._push(None)
        resume, self._resume = self._resume, None
        if resume is not None:
            resume()

    # The opening handshake
    def _handshake(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > self._server.options.max_request:
                transport.abort()
            else:
                self._head = head
            return
        self._head = b""
        rest = head[end + 4 :]
        # Only the request head goes to websockets: the bytes after it are frames, and
        # the parser is fed those only through the splitter.
        self._conn.receive_data(head[: end + 4])
        requests = [e for e in self._conn.events_received() if isinstance(e, Request)]
        if not requests:  # malformed: websockets queued its answer and the end of stream
            self._send_pending()
            if not transport.is_closing():
                transport.close()
            return
        accept = self._upgrade(requests[0])
        self._send_pending()
        if accept is None:
            self._state = _CLOSING
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A fresh protocol, created open (ServerProtocol's documented `state`), parses
        # the frames: the handshake's protocol would keep the request and its headers
        # alive for the socket's lifetime (~2 KB per idle viewer).
        self._conn = _protocol(self._server.options, State.OPEN)
        self._state = _OPEN
        self._splitter = Splitter(self._server.options.max_frame)
        self.ping_at = self._server.loop.time()
        self._task = self._server.loop.create_task(accept(self))
        self._task.add_done_callback(self._app_done)
        if rest:
            self.data_received(rest)

    def _upgrade(self, request: Request) -> Accept | None:
        response = self._conn.accept(request)
        if response.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS:
            self._conn.send_response(response)  # websockets' own answer to a bad handshake
            return None
        path = request.path.partition("?")[0]
        headers = tuple((k.lower(), v) for k, v in request.headers.raw_items())
        try:
            decision = self._server.handler(Upgrade(path, self.peer, headers))
        except Exception:
            log.exception("upgrade handler failed", path=path)
            decision = Refusal(500, b'{"error":{"code":"unavailable","message":"error"}}')
        if isinstance(decision, Refusal):
            status = http.HTTPStatus(decision.status)
            refused = Response(
                status.value,
                status.phrase,
                Headers(
                    [
                        ("Content-Type", decision.content_type),
                        ("Content-Length", str(len(decision.body))),
                        ("Connection", "close"),
                    ]
                ),
                decision.body,
            )
            self._conn.send_response(refused)
            return None
        self._conn.send_response(response)
        return decision

    def _app_done(self, task: asyncio.Task[None]) -> None:
        self._task = None
        if not task.cancelled() and task.exception() is not None:
            log.error("socket handler failed", exc_info=task.exception())
        if self._state == _OPEN:
            self.close(1000 if task.cancelled() or task.exception() is None else 1011, "")

    # Frames the splitter left to websockets
    def _parse(self, frame_bytes: bytes) -> None:
        conn = self._conn
        if self._parts is not None and frame_bytes[0] & 0x0F == Opcode.CLOSE.value:
            # A close inside a fragmented message is a normal closure (RFC 6455 5.4:
            # control frames may come between fragments), but websockets fails it 1002:
            # end the message first with an empty final continuation, and drop it.
            self._parts = self._decoder = None
            conn.receive_data(_EMPTY_FINAL_CONTINUATION)
            conn.events_received()
        conn.receive_data(frame_bytes)
        self._events()
        if conn.state is not State.OPEN and self._splitter is not None:
            # Failed or closing: websockets discards whatever follows.
            self._splitter.passthrough = True
            if self._state == _OPEN:
                self._state = _CLOSING
                self._push(None)
                self._arm_abort()
        self._send_pending()

    def _events(self) -> None:
        for event in self._conn.events_received():
            if isinstance(event, WsFrame):
                self._frame(event)

    def _frame(self, frame: WsFrame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PONG:
            if frame.data == self.ping_data:
                self.ping_data = None
            return
        if opcode is Opcode.TEXT:
            if frame.fin:
                try:
                    self._push(bytes(frame.data).decode())
                except UnicodeDecodeError as exc:
                    self._invalid(exc)
                return
            # Decoded fragment by fragment: invalid UTF-8 fails at once, not at the end.
            self._decoder = codecs.getincrementaldecoder("utf-8")()
            self._parts = []
            self._fragment(frame)
        elif opcode is Opcode.BINARY:
            if frame.fin:
                self._push(bytes(frame.data))
                return
            self._decoder = None
            self._parts = []
            self._fragment(frame)
        elif opcode is Opcode.CONT:
            self._fragment(frame)
        # PING: websockets queued the pong; CLOSE: it answered, _parse() sees the state

    def _fragment(self, frame: WsFrame) -> None:
        parts = self._parts
        if parts is None:
            return  # websockets refuses a continuation without a start
        decoder = self._decoder
        if decoder is not None:
            try:
                parts.append(decoder.decode(bytes(frame.data), final=frame.fin))
            except UnicodeDecodeError as exc:
                self._invalid(exc)
                return
        else:
            parts.append(bytes(frame.data))
        if frame.fin:
            self._parts = self._decoder = None
            texts = [p for p in parts if isinstance(p, str)]
            self._push(
                "".join(texts)
                if decoder is not None
                else b"".join(bytes(p) for p in parts if isinstance(p, bytes))
            )

    def _invalid(self, exc: UnicodeDecodeError) -> None:
        self._parts = self._decoder = None
        self._conn.fail(1007, f"{exc.reason} at position {exc.start}")

    def _send_pending(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for chunk in self._conn.data_to_send():
            if chunk:
                transport.write(chunk)
            else:
                # websockets' end of stream: the server closes the TCP connection first
                # (RFC 6455 7.1.1); close() flushes the buffer first, the abort timer
                # covers a peer that stopped reading.
                transport.close()
                self._arm_abort()

    def _arm_abort(self) -> None:
        if self._timer is None and self._transport is not None:
            self._timer = self._server.loop.call_later(
                self._server.options.close_timeout_s, self._transport.abort
            )

    # Inbound, for the socket's handler (one reader)
    def _push(self, item: Message | None) -> None:
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        elif item is None and inbox and inbox[-1] is None:
            return
        inbox.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> Message | None:
        """The next message; None once the connection is closing or gone."""
        while True:
            inbox = self._inbox
            if inbox:
                item = inbox.popleft()
                if item is None:
                    inbox.append(None)  # stays gone for every later call
                elif not inbox:
                    self._inbox = None
                    if self._read_paused and self._state == _OPEN and self._pending is None:
                        self._read_paused = False
                        assert self._transport is not None
                        self._transport.resume_reading()
                return item
            if self._state == _GONE:
                return None
            pending = self._pending
            if pending is not None:
                self._pending = None
                self._process(pending)
                if self._pending is None and self._read_paused and self._state == _OPEN:
                    self._read_paused = False
                    assert self._transport is not None  # open
                    self._transport.resume_reading()
                continue
            self._waiter = self._server.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    # Wire
    @property
    def open(self) -> bool:
        return self._state == _OPEN

    @property
    def can_write(self) -> bool:
        return self._state == _OPEN and not self._write_paused

    def write(self, frame: Frame) -> None:
        transport = self._transport  # set before the state is open
        if self._state == _OPEN and transport is not None:
            transport.write(frame.data)

    def write_joined(self, frames: Sequence[Frame], data: bytes) -> None:
        transport = self._transport
        if self._state == _OPEN and transport is not None:
            transport.write(data)

    def on_writable(self, callback: Callable[[], None]) -> None:
        self._resume = callback

    def close(self, code: int, reason: str) -> None:
        """Send the close frame now, even to a paused transport: a slow consumer's
        goodbye must not wait behind the buffer it is not reading."""
        if self._state != _OPEN:
            return
        self._state = _CLOSING
        self._push(None)
        if self._conn.state is State.OPEN:
            self._conn.send_close(code, reason)
        if self._splitter is not None:
            self._splitter.passthrough = True  # only the peer's close frame matters now
        pending, self._pending = self._pending, None
        if pending:
            self._process(pending)  # closing: straight to websockets, in order
        self._send_pending()
        transport = self._transport
        if transport is not None and self._read_paused:
            self._read_paused = False  # to read the peer's close frame
            transport.resume_reading()
        self._arm_abort()

    # Keepalive, driven by the server's sweep
    def keepalive(self, now: float, options: WireOptions) -> None:
        if self._state != _OPEN:
            return
        if self.ping_data is not None:
            if now - self.ping_at > options.ping_timeout_s:
                self.close(1011, "keepalive ping timeout")
        elif now - self.ping_at >= options.ping_interval_s:
            self.ping_at = now
            self.ping_data = random.getrandbits(32).to_bytes(4, "big")
            self._conn.send_ping(self.ping_data)
            self._send_pending()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class WireServer:
    """Serves `RoomWire` connections on a listening socket (one you bound yourself, e.g.
    with SO_REUSEPORT for workers) and sweeps their keepalive pings."""

    def __init__(self, handler: Handler, options: WireOptions | None = None) -> None:
        self.handler = handler
        self.options = options or WireOptions()
        self.connections: set[RoomWire] = set()
        self.loop = asyncio.get_running_loop()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._drained: asyncio.Future[None] | None = None  # set when the last one goes

    def forget(self, conn: RoomWire) -> None:
        self.connections.discard(conn)
        if not self.connections and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def start(self, sock: socket.socket) -> None:
        self._server = await self.loop.create_server(lambda: RoomWire(self), sock=sock)
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        # One timer for every socket, not one per socket: a quarter of the interval
        # keeps each ping within 25 % of its due time.
        every = min(self.options.ping_interval_s, self.options.ping_timeout_s) / 4
        self._sweeper = self.loop.call_later(every, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in tuple(self.connections):
            conn.keepalive(now, self.options)
        self._schedule_sweep()

    def close(self) -> None:
        """Stop accepting; open connections stay."""
        if self._server is not None:
            self._server.close()

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, close what is still open (1012), abort what does not finish
        its closing handshake within `timeout_s`."""
        self.close()
        for conn in tuple(self.connections):
            conn.close(1012, "server shutting down")
        if self.connections:
            self._drained = self.loop.create_future()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained, timeout_s)
        for conn in tuple(self.connections):
            conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout_s)
