"""A room socket's outbound side without a network: what goes out in which writes, in
which order, and what waits while the transport is paused."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from liveshop.core import protocol as p
from liveshop.realtime.outbound import RoomSocket
from liveshop.realtime.wire import Frame


class RecordingWire:
    """A `Wire` that keeps each write as the list of messages it carried."""

    def __init__(self) -> None:
        self.writes: list[list[dict[str, object]]] = []
        self.can_write = True
        self.open = True
        self._resume: Callable[[], None] | None = None

    def write(self, frame: Frame) -> None:
        self.writes.append([json.loads(frame.text)])

    def write_joined(self, frames: Sequence[Frame], data: bytes) -> None:
        assert data == b"".join(f.data for f in frames)
        self.writes.append([json.loads(f.text) for f in frames])

    def on_writable(self, callback: Callable[[], None]) -> None:
        self._resume = callback

    def resume(self) -> None:
        self.can_write = True
        assert self._resume is not None
        self._resume()

    def close(self, code: int, reason: str) -> None:
        self.open = False


def pin(seq: int) -> str:
    return json.dumps({"type": "pinned", "sku": f"s{seq}", "seq": seq, "ts": 0})


def welcome(seq: int) -> p.Welcome:
    state = p.RoomState(live=True, viewers=1, products=[], offers=[])
    return p.Welcome(room="s001", role="viewer", seq=seq, state=state, resumed=True)


def kinds(write: list[dict[str, object]]) -> list[object]:
    """Room frames by their seq, replies by their type."""
    return [m["seq"] if m["type"] == "pinned" else m["type"] for m in write]


def test_resume_goes_out_as_one_write_in_order() -> None:
    wire = RecordingWire()
    sock = RoomSocket(wire, max_queue=100, conn_id=1)
    for seq in (11, 12, 13):  # room frames published while the snapshot was read
        sock.deliver(Frame.of(seq, pin(seq)))
    assert wire.writes == []  # held back until the welcome
    sock.welcome(welcome(12), [pin(s) for s in range(1, 13)])
    # welcome, the twelve missed messages, then only the held frame the snapshot did not
    # cover (11 and 12 it did): one write, not fourteen
    assert [kinds(w) for w in wire.writes] == [["welcome", *range(1, 13), 13]]
    sock.deliver(Frame.of(14, pin(14)))
    assert [kinds(w) for w in wire.writes[1:]] == [[14]]


def test_resume_to_a_paused_transport_waits_and_keeps_its_order() -> None:
    wire = RecordingWire()
    sock = RoomSocket(wire, max_queue=100, conn_id=1)
    sock.deliver(Frame.of(6, pin(6)))
    wire.can_write = False
    sock.reply(p.Pong(t=1))  # a reply waiting for the transport goes first
    sock.welcome(welcome(5), [pin(s) for s in (4, 5)])
    sock.deliver(Frame.of(7, pin(7)))
    assert wire.writes == []
    wire.resume()
    assert [m for w in wire.writes for m in kinds(w)] == ["pong", "welcome", 4, 5, 6, 7]
