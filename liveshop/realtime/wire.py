"""The room socket's wire: uvicorn's sans-I/O websocket protocol plus a direct path for
pre-framed bytes.

Fan-out is the server's hot loop: every room message goes to every viewer. Through ASGI
each delivery costs a task wake-up, an `await send(...)`, a fresh `str.encode()` and a
fresh frame header per viewer. Server frames are unmasked, so one encoding of a message
serves every socket of the room; this module lets the room write those bytes straight to
each transport (what `websockets.broadcast()` does), and tells the socket's owner when a
paused transport can take more. The ASGI `send` stays in use for the handshake and the
close; `AsgiWire` gives the same interface over plain ASGI for other servers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, NamedTuple, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State
from websockets.streams import StreamReader

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

EXTENSION = "liveshop.realtime.wire"
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Frame(NamedTuple):
    """One encoded server message: the same bytes go to every socket of the room."""

    seq: int | None  # None for replies to one client
    text: str
    data: bytes  # the websocket frame (server frames are unmasked: one for all sockets)

    @classmethod
    def of(cls, seq: int | None, text: str) -> Frame:
        return cls(seq, text, text_frame(text.encode()))


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented websocket text frame (RFC 6455 5.2), as servers send."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def simple_texts(data: bytes, max_size: int) -> list[str] | None:
    """The messages of `data` when it is nothing but complete, masked, unfragmented text
    frames of up to `max_size` bytes of valid UTF-8 (what a client sends); None for
    anything else, which the websockets parser then handles, errors included."""
    texts = []
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < 6 or data[pos] != 0x81 or data[pos + 1] < 0x80:
            return None  # short, not FIN+TEXT without RSV bits, or not masked
        n = data[pos + 1] & 0x7F
        pos += 2
        if n == 126:
            n = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
            if n < 126:
                return None  # not the minimal length encoding
        elif n == 127:
            return None
        if n > max_size or end - pos < 4 + n:
            return None
        payload = apply_mask(data[pos + 4 : pos + 4 + n], data[pos : pos + 4])
        pos += 4 + n
        try:
            texts.append(payload.decode())
        except UnicodeDecodeError:
            return None
    return texts


_AT_EOF = StreamReader.at_eof.__code__


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


class _Inbox:
    """What uvicorn uses of `asyncio.Queue` (put_nowait, get, empty) for its one reader,
    without the Queue's three deques and Event: ~3 KB less per idle socket."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []  # short: uvicorn pauses reading while one is unread
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class _Flag:
    """What uvicorn uses of `asyncio.Event` for `writable`, with no deque until someone
    waits (an Event allocates one up front: 760 bytes per socket)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if not self._set:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            await waiter
        return True


class RoomWireProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol, exposing itself to the app as a `Wire`
    under `scope["extensions"]["liveshop.realtime.wire"]`, and leaner per idle socket (the
    room's viewers are idle most of the time, and there are thousands of them)."""

    _resume: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Client messages that are whole text frames skip the websockets parser, which
        costs a generator step per header, mask and payload: a flash sale is thousands
        of `buy` frames a second. Anything else (the handshake, control frames,
        fragments, errors) goes through it, so it always sees a stream cut at frames."""
        conn = self.conn
        if (
            conn.state is State.OPEN
            and not self.close_sent
            and conn.current_size is None
            and not conn.reader.buffer
            and _parser_at_frame_start(conn.parser)
        ):
            texts = simple_texts(data, conn.max_message_size or 1 << 20)
            if texts is not None:
                put = self.queue.put_nowait
                for text in texts:
                    put({"type": "websocket.receive", "text": text})
                if not self.read_paused:
                    self.read_paused = True
                    self.transport.pause_reading()
                return
        super().data_received(data)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        self.request = None  # type: ignore[assignment]  # only the scope is used from here on
        scope = getattr(self, "scope", None)
        if scope is not None:  # the app task starts on the next loop turn: not yet running
            scope["extensions"][EXTENSION] = self

    def start_keepalive(self) -> None:
        # Called once the handshake response is written: its headers are not needed again.
        self.response = None  # type: ignore[assignment]
        super().start_keepalive()

    # Wire
    @property
    def open(self) -> bool:
        return not (self.close_sent or self.disconnected)

    @property
    def can_write(self) -> bool:
        return self.writable.is_set() and not (self.close_sent or self.disconnected)

    def write(self, frame: Frame) -> None:
        if not (self.close_sent or self.disconnected):
            self.transport.write(frame.data)

    def write_joined(self, frames: Sequence[Frame], data: bytes) -> None:
        if not (self.close_sent or self.disconnected):
            self.transport.write(data)

    def on_writable(self, callback: Callable[[], None]) -> None:
        self._resume = callback

    def close(self, code: int, reason: str) -> None:
        """uvicorn's `websocket.close`, without waiting for a paused transport: a slow
        consumer's goodbye must not wait for the buffer it is not reading."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # A peer that stopped reading never drains its buffer, so close() would wait on it
        # forever: abort instead.
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._resume is not None:
            self._resume()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._resume is not None:
            self._resume()
            self._resume = None

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        # the peer stopped answering: its buffer may never drain
        self.loop.call_later(self.close_timeout, self.transport.abort)


def _parser_at_frame_start(parser: Any) -> bool:
    """websockets' frame parser is waiting for the first byte of a frame: suspended in
    `StreamReader.at_eof` inside `Protocol.parse` (inside `ServerProtocol.parse`)."""
    inner = getattr(parser, "gi_yieldfrom", None)
    inner = getattr(inner, "gi_yieldfrom", None)
    return getattr(inner, "gi_code", None) is _AT_EOF


class AsgiWire:
    """A `Wire` over plain ASGI `send`, for servers other than `liveshop serve`: one
    task writes what is queued, in order. Slower (a task wake-up and an ASGI send per
    frame) but equivalent."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._pending: deque[str | tuple[int, str]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._gone = False

    @property
    def open(self) -> bool:
        return not self._gone

    @property
    def can_write(self) -> bool:
        return not self._gone

    def write(self, frame: Frame) -> None:
        self._push(frame.text)

    def write_joined(self, frames: Sequence[Frame], data: bytes) -> None:
        for frame in frames:
            self._push(frame.text)

    def on_writable(self, callback: Callable[[], None]) -> None:
        pass  # never paused: the queue here is unbounded, bounded by the caller's

    def close(self, code: int, reason: str) -> None:
        self._push((code, reason))
        self._gone = True  # nothing after the close frame

    def _push(self, item: str | tuple[int, str]) -> None:
        if self._gone:
            return
        self._pending.append(item)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending:
                item = self._pending.popleft()
                if isinstance(item, str):
                    await self._send({"type": "websocket.send", "text": item})
                else:
                    code, reason = item
                    await self._send({"type": "websocket.close", "code": code, "reason": reason})
                    return
        except (OSError, RuntimeError):
            self._gone = True  # the peer is gone; the reader sees the disconnect
        finally:
            self._task = None

    async def aclose(self) -> None:
        """Wait (briefly) for what is queued, then stop."""
        task = self._task
        if task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 5.0)
