"""Room-socket framing without I/O: server frames built once for every socket, and the
client byte stream cut into whole frames (RFC 6455 5.2).

Owns the invariant "websockets' parser is only ever fed whole frames, at a frame
boundary": `Splitter` cuts the stream itself, reads whole masked text frames on the
fast path and hands every other frame, as exactly its bytes, to the caller for the
parser. Pure: bytes in, frames out; no sockets, no websockets import (only wire.py has it).
"""

from __future__ import annotations

import sys
from typing import NamedTuple


class Frame(NamedTuple):
    """One encoded server message: the same bytes go to every socket of the room."""

    seq: int | None  # None for replies to one client
    text: str
    data: bytes  # the websocket frame (server frames are unmasked: one for all sockets)

    @classmethod
    def of(cls, seq: int | None, text: str) -> Frame:
        return cls(seq, text, text_frame(text.encode()))


def _header(first: int, n: int) -> bytes:
    if n < 126:
        return bytes((first, n))
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big")
    return bytes((first, 127)) + n.to_bytes(8, "big")


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented text frame, as servers send (RFC 6455 5.2)."""
    return _header(0x81, len(payload)) + payload


def binary_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented binary frame."""
    return _header(0x82, len(payload)) + payload


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR `payload` with the 4-byte `mask` (RFC 6455 5.3), as one big-int operation:
    our own, because websockets documents no masking function (its C `speedups` and
    `utils.apply_mask` are internals)."""
    n = len(payload)
    if not n:
        return b""
    key = mask * (n // 4 + 1)
    order = sys.byteorder
    return (int.from_bytes(payload, order) ^ int.from_bytes(key[:n], order)).to_bytes(n, order)


TEXT_FIN = 0x81  # FIN, no RSV bits, opcode 1
_OP_CONT, _OP_TEXT, _OP_BINARY = 0, 1, 2


class Splitter:
    """Cuts a client's byte stream into frames. `feed()` returns, in stream order, a
    `str` for each whole masked unfragmented text frame of at most `max_frame` payload
    bytes that is valid UTF-8 (the fast path), and `bytes` for every other frame, exactly
    its bytes, for websockets' parser: control frames, fragments, binary, RSV bits, bad
    UTF-8, unmasked or non-minimal headers. A frame announcing more than `max_frame`
    bytes is handed over from its header on (the parser refuses it with 1009 from the
    header alone), and so is everything after it: nothing is buffered beyond one frame."""

    __slots__ = ("_buf", "_fragmented", "_max", "passthrough")

    def __init__(self, max_frame: int) -> None:
        self._max = max_frame
        self._buf = b""  # the start of a frame not yet whole
        self._fragmented = False  # inside a fragmented message: the parser tracks it
        self.passthrough = False  # everything goes to the parser (failed or closing)

    def feed(self, data: bytes) -> list[str | bytes]:
        if self.passthrough:
            return [data]
        if self._buf:
            data = self._buf + data
            self._buf = b""
        out: list[str | bytes] = []
        pos = 0
        end = len(data)
        limit = self._max
        while end - pos >= 2:
            first = data[pos]
            second = data[pos + 1]
            n = second & 0x7F
            head = 2
            minimal = True
            if n == 126:
                if end - pos < 4:
                    break
                n = int.from_bytes(data[pos + 2 : pos + 4], "big")
                head = 4
                minimal = n >= 126
            elif n == 127:
                if end - pos < 10:
                    break
                n = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
                minimal = False  # we never take 64-bit lengths on the fast path
            masked = second & 0x80
            if masked:
                head += 4
            if n > limit:
                out.append(data[pos:])
                self.passthrough = True
                return out
            stop = pos + head + n
            if stop > end:
                break
            if first == TEXT_FIN and masked and minimal and not self._fragmented:
                body = pos + head
                try:
                    out.append(unmask(data[body:stop], data[body - 4 : body]).decode())
                except UnicodeDecodeError:
                    out.append(data[pos:stop])  # the parser's caller answers 1007
            else:
                opcode = first & 0x0F
                if opcode in (_OP_TEXT, _OP_BINARY) and not first & 0x80:
                    self._fragmented = True
                elif opcode == _OP_CONT and first & 0x80:
                    self._fragmented = False
                out.append(data if pos == 0 and stop == end else data[pos:stop])
            pos = stop
        if pos < end:
            self._buf = data[pos:]
        return out
