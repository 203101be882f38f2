"""The room socket's wire: the frame splitter with bytes alone, then our server on real
sockets (handshake, refusals, control frames, closing, keepalive, slow peers, direct
writes), and the same framing behind the whole app."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import websockets
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.uri import parse_uri

from liveshop.realtime.frames import Frame as ServerFrame
from liveshop.realtime.frames import Splitter, text_frame, unmask
from liveshop.realtime.wire import Refusal, RoomWire, Upgrade, WireOptions, WireServer
from tests.conftest import ROOM
from tests.support import UNIT, RunningServer, token


def client_frame(payload: bytes, opcode: Opcode = Opcode.TEXT, *, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(mask=True)


# The splitter, with bytes alone


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_server_frames_match_the_websockets_serializer(size: int) -> None:
    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_unmask_is_the_rfc_xor() -> None:
    mask = b"\x01\x02\x03\x04"
    for n in (0, 1, 3, 4, 5, 127, 1000):
        data = bytes(range(256))[: n % 256] * (n // 256 + 1)
        data = data[:n]
        assert unmask(data, mask) == bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def test_whole_text_frames_take_the_fast_path_and_anything_else_is_left_to_the_parser() -> None:
    first, second = '{"type":"ping"}', "荔枝" * 100  # the second needs a 16-bit length
    data = client_frame(first.encode()) + client_frame(second.encode())
    assert Splitter(65536).feed(data) == [first, second]
    assert Splitter(65536).feed(b"") == []
    for frame in (
        client_frame(b"", Opcode.PING),  # control frame
        client_frame(b"\xff\xfe"),  # not UTF-8: the wire answers 1007
        client_frame(b"\x00\x01", Opcode.BINARY),
        Frame(Opcode.TEXT, b"a").serialize(mask=False),  # unmasked: the parser says 1002
        bytes((0xC1,)) + client_frame(b"a")[1:],  # RSV1 set: the parser says 1002
    ):
        assert Splitter(65536).feed(frame) == [frame]


def test_a_frame_cut_at_every_byte_boundary_comes_out_once_and_whole() -> None:
    text = '{"type":"buy","sku":"荔枝"}'
    control = client_frame(b"hi", Opcode.PING)
    frames = client_frame(text.encode()) + control + client_frame(b"x" * 300)  # 16-bit length
    for cut in range(len(frames) + 1):
        s = Splitter(65536)
        out = s.feed(frames[:cut]) + s.feed(frames[cut:])
        assert out == [text, control, "x" * 300], cut
    s = Splitter(65536)
    out = [item for byte in frames for item in s.feed(bytes([byte]))]  # one byte a read
    assert out == [text, control, "x" * 300]


def test_fragments_and_the_control_frames_between_them_all_go_to_the_parser() -> None:
    start = client_frame(b'{"type":', fin=False)
    ping = client_frame(b"p", Opcode.PING)
    # A whole text frame inside a fragmented message is a protocol error: the parser
    # must see it, not the fast path.
    inside = client_frame(b"whole")
    end = client_frame(b'"ping"}', Opcode.CONT)
    after = client_frame(b"after")
    s = Splitter(65536)
    assert s.feed(start + ping + inside + end + after) == [start, ping, inside, end, "after"]


def test_an_oversize_frame_goes_to_the_parser_from_its_header_and_nothing_is_buffered() -> None:
    big = client_frame(b"a" * 70_000)
    s = Splitter(65536)
    out = s.feed(big[:14])
    assert out == [big[:14]]  # the parser refuses it (1009) from the header alone
    assert s.feed(big[14:]) == [big[14:]]  # and discards the rest


def test_non_minimal_lengths_are_left_to_the_parser() -> None:
    payload = b"abc"
    frame = bytes((0x81, 0x80 | 126)) + (3).to_bytes(2, "big") + b"\0\0\0\0" + payload
    assert Splitter(65536).feed(frame) == [frame]


# Our server on real sockets


async def echo(wire: RoomWire) -> None:
    """Echo each text message back, pre-framed, as the room's fan-out writes."""
    while (message := await wire.receive()) is not None:
        if isinstance(message, str):
            if message == "close":
                wire.close(4000, "asked")
                return
            wire.write(ServerFrame.of(None, message))


def handler(request: Upgrade) -> Refusal | object:
    if request.path != "/echo":
        return Refusal(404, b'{"error":{"code":"not_found","message":"no"}}')
    return echo


@pytest.fixture
async def wire_url() -> AsyncIterator[tuple[str, WireServer]]:
    server = WireServer(
        handler,  # type: ignore[arg-type]  # echo is an Accept
        WireOptions(ping_interval_s=0.4 * UNIT, ping_timeout_s=0.4 * UNIT, close_timeout_s=UNIT),
    )
    sock = socket.create_server(("127.0.0.1", 0))
    # Small kernel buffers, as `liveshop serve` sets them: a peer that stops reading
    # shows up as a paused transport after a few frames.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    await server.start(sock)
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/echo", server
    finally:
        await server.aclose(1.0)


class RawClient:
    """A websocket client over a bare TCP stream: it writes exactly the bytes a test
    gives it, cut where the test cuts them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol: ClientProtocol
        self.frames: list[Frame] = []  # received, not yet taken

    @classmethod
    async def connect(cls, url: str, *, extra: bytes = b"") -> RawClient:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        raw = cls(reader, writer)
        raw.protocol = ClientProtocol(parse_uri(url))
        raw.protocol.send_request(raw.protocol.connect())
        for chunk in raw.protocol.data_to_send():
            writer.write(chunk + extra if chunk else chunk)
        while raw.protocol.state.name == "CONNECTING":
            raw.protocol.receive_data(await reader.read(65536))
        raw.frames = [e for e in raw.protocol.events_received() if isinstance(e, Frame)]
        return raw

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_frame(self, timeout: float = 5.0) -> Frame:
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), timeout * UNIT)
            if not data:
                self.protocol.receive_eof()
            else:
                self.protocol.receive_data(data)
            self.frames += [e for e in self.protocol.events_received() if isinstance(e, Frame)]
            if not data and not self.frames:
                raise EOFError("connection closed")
        return self.frames.pop(0)

    async def close_frame(self) -> Close:
        while (frame := await self.next_frame()).opcode is not Opcode.CLOSE:
            pass
        return Close.parse(frame.data)

    async def next_message(self, kind: str) -> dict[str, object]:
        while True:
            frame = await self.next_frame()
            if frame.opcode is Opcode.TEXT:
                message = json.loads(bytes(frame.data))
                if message["type"] == kind:
                    return message  # type: ignore[no-any-return]

    def close(self) -> None:
        self.writer.close()


async def test_handshake_then_echo_of_pre_framed_writes(
    wire_url: tuple[str, WireServer],
) -> None:
    url, _ = wire_url
    async with websockets.connect(url) as ws:
        for text in ("a", "荔枝" * 50, "x" * 5000, "y" * 65_000):
            await ws.send(text)
            assert await ws.recv() == text  # the frame we wrote arrived intact


async def test_a_frame_sent_with_the_request_is_not_lost(wire_url: tuple[str, WireServer]) -> None:
    url, _ = wire_url
    c = await RawClient.connect(url, extra=client_frame(b"early"))
    try:
        frame = await c.next_frame()
        assert frame.opcode is Opcode.TEXT and frame.data == b"early"
    finally:
        c.close()


async def test_refused_upgrade_answers_its_status_and_json(
    wire_url: tuple[str, WireServer],
) -> None:
    url, _ = wire_url
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url.replace("/echo", "/other"))
    response = refused.value.response
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body)["error"]["code"] == "not_found"


async def test_a_plain_http_request_gets_websockets_own_refusal(
    wire_url: tuple[str, WireServer],
) -> None:
    url, _ = wire_url
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    status = await asyncio.wait_for(reader.readline(), 5 * UNIT)
    assert status.startswith(b"HTTP/1.1 426")
    writer.close()


async def test_client_ping_gets_pong_and_server_pings_keep_alive(
    wire_url: tuple[str, WireServer],
) -> None:
    url, server = wire_url
    c = await RawClient.connect(url)
    try:
        await c.write(client_frame(b"are you there", Opcode.PING) + client_frame(b"after"))
        pong = await c.next_frame()
        assert pong.opcode is Opcode.PONG and pong.data == b"are you there"
        assert (await c.next_frame()).data == b"after"
        ping = await c.next_frame(3.0)  # the server's keepalive
        assert ping.opcode is Opcode.PING
        await c.write(client_frame(bytes(ping.data), Opcode.PONG))
        ping = await c.next_frame(3.0)  # answered: it pings again, and is still open
        assert ping.opcode is Opcode.PING and len(server.connections) == 1
        # Not answered: closed 1011, and dropped.
        assert (await c.close_frame()).code == 1011
    finally:
        c.close()


async def test_close_handshake_both_ways(wire_url: tuple[str, WireServer]) -> None:
    url, server = wire_url
    async with websockets.connect(url) as ws:  # the server closes
        await ws.send("close")
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4000 and ws.close_reason == "asked"
    ws = await websockets.connect(url)  # the client closes
    await ws.close(1000, "bye")
    assert ws.close_code == 1000
    for _ in range(100):
        if not server.connections:
            break
        await asyncio.sleep(0.01 * UNIT)
    assert not server.connections


async def test_frames_after_our_close_do_not_hold_up_the_closing_handshake(
    wire_url: tuple[str, WireServer],
) -> None:
    """A client may still send a message before it answers our close frame: the server
    reads on to the answer and closes the TCP connection at once, not at the timeout."""
    url, _ = wire_url
    c = await RawClient.connect(url)
    try:
        await c.write(client_frame(b"close"))
        assert (await c.close_frame()).code == 4000
        await c.write(client_frame(b"one more"))  # sent before it saw our close
        await asyncio.sleep(0.1 * UNIT)  # a read of its own
        loop = asyncio.get_running_loop()
        started = loop.time()
        await c.write(client_frame(b"\x0f\xa0", Opcode.CLOSE))
        assert await asyncio.wait_for(c.reader.read(), 5 * UNIT) == b""  # TCP closed
        assert loop.time() - started < 0.5 * UNIT  # the close timeout is 1 unit
    finally:
        c.close()


async def test_a_peer_that_stops_reading_is_aborted_after_the_close_timeout(
    wire_url: tuple[str, WireServer],
) -> None:
    url, server = wire_url
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up quickly
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    proto = ClientProtocol(parse_uri(url))
    proto.send_request(proto.connect())
    writer.write(b"".join(proto.data_to_send()))
    await reader.readuntil(b"\r\n\r\n")  # the 101 response; from now on we never read
    transport = writer.transport
    assert isinstance(transport, asyncio.Transport)
    transport.pause_reading()
    try:
        for _ in range(40):  # echoes pile up in our unread buffer and the server's
            writer.write(client_frame(b"z" * 60_000))
        await asyncio.sleep(0.3 * UNIT)
        (conn,) = server.connections
        assert not conn.can_write  # its transport is paused: the peer is not reading
        conn.close(1000, "")  # its close frame cannot get through
        for _ in range(300):
            if not server.connections:
                break
            await asyncio.sleep(0.01 * UNIT)
        assert not server.connections  # aborted after close_timeout_s, not stuck
    finally:
        writer.close()


async def test_invalid_utf8_in_fragments_fails_fast_with_1007(
    wire_url: tuple[str, WireServer],
) -> None:
    url, _ = wire_url
    c = await RawClient.connect(url)
    try:
        await c.write(client_frame(b"ok \xce", fin=False))  # an incomplete sequence: fine
        await c.write(client_frame(b"\xff", Opcode.CONT, fin=False))  # invalid at once
        assert (await c.close_frame()).code == 1007
    finally:
        c.close()


# The same framing behind the whole app


def ping(t: int) -> bytes:
    return client_frame(json.dumps({"type": "ping", "t": t}).encode())


async def test_frames_however_cut_and_mixed_get_their_answers(server: RunningServer) -> None:
    c = await RawClient.connect(server.ws_url(ROOM))
    try:
        hello = json.dumps({"type": "hello", "token": token(user="u7")}).encode()
        await c.write(client_frame(hello) + ping(1))  # two messages in one segment
        assert (await c.next_message("welcome"))["user"] == "u7"
        assert (await c.next_message("pong"))["t"] == 1
        frame = ping(2)
        for cut in (1, 2, 5):  # inside the header, the mask, the payload
            await c.write(frame[:cut])
            await asyncio.sleep(0.05)
            await c.write(frame[cut:] + ping(3))  # the rest, then a whole frame
            assert (await c.next_message("pong"))["t"] == 2
            assert (await c.next_message("pong"))["t"] == 3
        whole = json.dumps({"type": "ping", "t": 4}).encode()
        await c.write(client_frame(whole[:5], fin=False) + client_frame(whole[5:], Opcode.CONT))
        assert (await c.next_message("pong"))["t"] == 4
        await c.write(client_frame(b"are you there", Opcode.PING) + ping(5))
        control = await c.next_frame()
        assert control.opcode is Opcode.PONG and control.data == b"are you there"
        assert (await c.next_message("pong"))["t"] == 5
        await c.write(client_frame(b'{"type":"ping","t":"\xff"}'))  # invalid UTF-8
        assert (await c.close_frame()).code == 1007
    finally:
        c.close()


async def test_an_unmasked_client_frame_fails_the_connection(server: RunningServer) -> None:
    c = await RawClient.connect(server.ws_url(ROOM))
    try:
        await c.write(Frame(Opcode.TEXT, b'{"type":"ping"}').serialize(mask=False))
        assert (await c.close_frame()).code == 1002
    finally:
        c.close()


async def test_a_frame_over_the_transport_limit_is_refused_1009(server: RunningServer) -> None:
    c = await RawClient.connect(server.ws_url(ROOM))
    try:
        await c.write(client_frame(b"a" * 70_000))
        assert (await c.close_frame()).code == 1009
    finally:
        c.close()


async def test_a_close_between_fragments_is_a_clean_close(
    wire_url: tuple[str, WireServer],
) -> None:
    """Autobahn 7.1.5: websockets alone would fail it 1002."""
    url, _ = wire_url
    c = await RawClient.connect(url)
    try:
        await c.write(client_frame(b"frag", fin=False) + client_frame(b"\x03\xe8", Opcode.CLOSE))
        assert (await c.close_frame()).code == 1000
    finally:
        c.close()


async def test_messages_before_a_bad_frame_are_answered_before_the_failure(
    wire_url: tuple[str, WireServer],
) -> None:
    """In stream order, even in one segment (Autobahn 3.2, 5.15): the echo, then 1002."""
    url, _ = wire_url
    c = await RawClient.connect(url)
    try:
        await c.write(client_frame(b"first") + bytes((0xA1,)) + client_frame(b"x")[1:])
        first = await c.next_frame()
        assert first.opcode is Opcode.TEXT and first.data == b"first"
        assert (await c.close_frame()).code == 1002  # RSV2 set
    finally:
        c.close()
