"""The room socket's framing: server frames built by hand, client text frames read
without the websockets parser when they are whole, and everything else through it."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from liveshop.realtime.wire import _parser_at_frame_start, simple_texts, text_frame
from tests.conftest import ROOM
from tests.support import RunningServer, token


def client_frame(payload: bytes, opcode: Opcode = Opcode.TEXT, *, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(mask=True)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_server_frames_match_the_websockets_serializer(size: int) -> None:
    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_whole_text_frames_are_read_and_anything_else_is_left_to_the_parser() -> None:
    first, second = '{"type":"ping"}', "荔枝" * 100  # the second needs a 16-bit length
    data = client_frame(first.encode()) + client_frame(second.encode())
    assert simple_texts(data, 65536) == [first, second]
    assert simple_texts(b"", 65536) == []
    assert simple_texts(data[:-1], 65536) is None  # cut inside a frame
    assert simple_texts(client_frame(b"a", fin=False), 65536) is None  # a fragment
    assert simple_texts(client_frame(b"", Opcode.PING), 65536) is None  # control frame
    assert simple_texts(client_frame(b"\xff\xfe"), 65536) is None  # not UTF-8
    assert simple_texts(client_frame(b"a" * 200), 100) is None  # over the size limit
    assert simple_texts(Frame(Opcode.TEXT, b"a").serialize(mask=False), 65536) is None


def test_parser_position_is_known_between_frames_only() -> None:
    server = ServerProtocol()
    client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"))
    request = client.connect().serialize()
    server.receive_data(request[:20])
    assert not _parser_at_frame_start(server.parser)  # still reading the HTTP request
    server.receive_data(request[20:])
    assert _parser_at_frame_start(server.parser)
    server.send_response(server.accept(server.events_received()[0]))
    assert _parser_at_frame_start(server.parser)
    frame = client_frame(b"hello")
    server.receive_data(frame[:3])  # the header, and one byte of the mask
    assert not _parser_at_frame_start(server.parser)
    server.receive_data(frame[3:])
    assert [e.data for e in server.events_received()] == [b"hello"]
    assert _parser_at_frame_start(server.parser)


class RawClient:
    """A websocket client over a bare TCP stream: it writes exactly the bytes a test
    gives it, cut where the test cuts them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol: ClientProtocol
        self.frames: list[Frame] = []  # received, not yet taken

    @classmethod
    async def connect(cls, url: str) -> RawClient:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        raw = cls(reader, writer)
        raw.protocol = ClientProtocol(parse_uri(url))
        raw.protocol.send_request(raw.protocol.connect())
        raw.flush()
        while raw.protocol.state.name == "CONNECTING":
            raw.protocol.receive_data(await reader.read(65536))
        raw.frames = list(raw.protocol.events_received())[1:]  # type: ignore[arg-type]  # after the response
        return raw

    def flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            self.writer.write(chunk)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_frame(self, timeout: float = 5.0) -> Frame:
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                self.protocol.receive_eof()
            else:
                self.protocol.receive_data(data)
            self.frames.extend(self.protocol.events_received())  # type: ignore[arg-type]
            if not data and not self.frames:
                raise EOFError("connection closed")
        return self.frames.pop(0)

    async def next_message(self, kind: str) -> dict[str, object]:
        while True:
            frame = await self.next_frame()
            if frame.opcode is Opcode.TEXT:
                message = json.loads(frame.data)
                if message["type"] == kind:
                    return message  # type: ignore[no-any-return]

    def close(self) -> None:
        self.writer.close()


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
        while (frame := await c.next_frame()).opcode is not Opcode.CLOSE:
            pass
        assert Close.parse(frame.data).code == 1007
    finally:
        c.close()


async def test_an_unmasked_client_frame_fails_the_connection(server: RunningServer) -> None:
    c = await RawClient.connect(server.ws_url(ROOM))
    try:
        await c.write(Frame(Opcode.TEXT, b'{"type":"ping"}').serialize(mask=False))
        while (frame := await c.next_frame()).opcode is not Opcode.CLOSE:
            pass
        assert Close.parse(frame.data).code == 1002
    finally:
        c.close()
