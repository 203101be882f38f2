"""A lean RFC 6455 websocket client on an asyncio Protocol, for thousands of sockets.

Owns framing only: the opening handshake, unmasked server frames in, masked client
frames out, ping → pong, the closing handshake. It knows nothing of rooms: complete
text messages go to the owner's `on_text`. Why not `websockets.connect`: its
per-frame cost is several times ours, and on 2 cores the load generator must stay
cheaper than the server it measures. Also speaks Engine.IO v4 / Socket.IO v5 over the
same socket (`socketio=True`) for the python-socketio baseline.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from typing import Protocol, cast

from websockets.utils import apply_mask

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class Owner(Protocol):
    """What a connection reports to: one viewer."""

    def on_open(self, ws: WsClient) -> None: ...

    def on_text(self, data: bytes) -> None: ...

    def on_closed(self, code: int, reason: str) -> None: ...


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    mask = os.urandom(4)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + apply_mask(payload, mask)


class WsClient(asyncio.Protocol):
    """One client websocket. `send_text` never blocks; the kernel buffers."""

    def __init__(self, owner: Owner, host: str, path: str, *, socketio: bool = False) -> None:
        self.owner = owner
        self._host = host
        self._path = path
        self._socketio = socketio
        self._key = base64.b64encode(os.urandom(16))
        self._buf = bytearray()
        self._fragments: list[bytes] = []
        self._open = False
        self._close_sent = False
        self._close_code = 1006
        self._close_reason = ""
        self.transport: asyncio.Transport | None = None
        self.done = asyncio.get_running_loop().create_future()

    # asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.write(
            b"GET "
            + self._path.encode()
            + b" HTTP/1.1\r\nHost: "
            + self._host.encode()
            + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
            + self._key
            + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def data_received(self, data: bytes) -> None:
        if self._open and not self._buf and not self._socketio:
            data = self._fast(data)
            if not data:
                return
        self._buf += data
        if not self._open:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end]).decode("latin-1")
            del self._buf[: end + 4]
            accept = base64.b64encode(hashlib.sha1(self._key + _GUID).digest()).decode()
            if not head.startswith("HTTP/1.1 101") or accept not in head:
                self._close_reason = head.split("\r\n", 1)[0]
                self._close_code = 1002
                self.abort()
                return
            self._open = True
            if not self._socketio:
                self.owner.on_open(self)
        self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)
        self.owner.on_closed(self._close_code, self._close_reason)

    # framing ---------------------------------------------------------------------

    def _fast(self, data: bytes) -> bytes:
        """Deliver whole small unfragmented text frames straight from `data` (the common
        case: one room message per read); return what is left for the full parser."""
        pos, n = 0, len(data)
        on_text = self.owner.on_text
        while n - pos >= 2 and data[pos] == 0x81:
            length = data[pos + 1]
            end = pos + 2 + length
            if length > 125 or end > n:
                break
            on_text(data[pos + 2 : end])
            pos = end
        return data[pos:] if pos else data

    def _parse(self) -> None:
        buf = self._buf
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, hdr = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, hdr = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, hdr = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            masked = b1 & 0x80
            if masked:
                hdr += 4
            if n - pos < hdr + length:
                break
            payload = bytes(buf[pos + hdr : pos + hdr + length])
            if masked:  # servers must not mask, but be lenient
                payload = apply_mask(payload, bytes(buf[pos + hdr - 4 : pos + hdr]))
            pos += hdr + length
            self._frame_received(b0 & 0x80, b0 & 0x0F, payload)
            if self.transport is None or self.transport.is_closing():
                break
        del buf[:pos]

    def _frame_received(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            if not fin:
                self._fragments.append(payload)
                return
            if self._fragments:
                payload = b"".join([*self._fragments, payload])
                self._fragments.clear()
            if self._socketio:
                self._engineio(payload)
            else:
                self.owner.on_text(payload)
        elif opcode == OP_PING:
            self._write(OP_PONG, payload)
        elif opcode == OP_CLOSE:
            if len(payload) >= 2:
                self._close_code = int.from_bytes(payload[:2], "big")
                self._close_reason = payload[2:].decode("utf-8", "replace")
            else:
                self._close_code = 1005
            if not self._close_sent:
                self._write(OP_CLOSE, payload[:2])
                self._close_sent = True
            assert self.transport is not None
            self.transport.close()

    def _engineio(self, payload: bytes) -> None:
        """Engine.IO v4 packets: 0 open, 2 ping, 4 message; Socket.IO: 0 connect, 2 event."""
        kind = payload[:1]
        if kind == b"4":
            if payload[1:2] == b"2":
                self.owner.on_text(payload[2:])  # an event: ["name", data]
            elif payload[1:2] == b"0":
                self.owner.on_open(self)  # namespace connected
        elif kind == b"2":
            self._write(OP_TEXT, b"3")
        elif kind == b"0":
            self._write(OP_TEXT, b"40")

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(opcode, payload))

    # API -------------------------------------------------------------------------------

    def send_text(self, data: bytes) -> None:
        if not self._close_sent:
            self._write(OP_TEXT, b"42" + data if self._socketio else data)

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake; the server's close frame ends the TCP link."""
        if self._close_sent or self.transport is None:
            return
        self._close_sent = True
        self._write(OP_CLOSE, code.to_bytes(2, "big"))

    def abort(self) -> None:
        """Drop the TCP link without a closing handshake (a phone losing signal)."""
        if self.transport is not None:
            self.transport.abort()


async def connect(
    owner: Owner, host: str, port: int, path: str, *, socketio: bool = False
) -> WsClient:
    """Open the TCP link and send the upgrade; `owner.on_open` follows the 101."""
    loop = asyncio.get_running_loop()
    if socketio:
        path = "/socket.io/?EIO=4&transport=websocket"
    _, proto = await loop.create_connection(
        lambda: WsClient(owner, f"{host}:{port}", path, socketio=socketio), host, port
    )
    return proto
