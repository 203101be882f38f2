"""Room pacing in the hub, without sockets: coalescing, seq order, one write per flush,
and a window that stretches by the other work the loop ran while the room was written
(never on an idle loop)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

from liveshop.realtime.hub import LocalRoom
from liveshop.realtime.wire import Frame


class RecordingSink:
    """A `Sink` that keeps what it was given, one entry per write."""

    def __init__(self, cost_s: float = 0.0) -> None:
        self.writes: list[tuple[float, list[int | None]]] = []
        self.cost_s = cost_s

    def deliver(self, frame: Frame) -> None:
        self._record([frame])

    def deliver_joined(self, frames: Sequence[Frame], data: bytes) -> None:
        assert data == b"".join(f.data for f in frames)
        self._record(list(frames))

    def _record(self, frames: list[Frame]) -> None:
        self.writes.append((time.monotonic(), [f.seq for f in frames]))  # when it began
        if self.cost_s:
            time.sleep(self.cost_s)  # a room that is slow to write to

    def close(self, code: int, reason: str) -> None:
        raise AssertionError("not expected")


def stock(seq: int, sku: str, left: int) -> tuple[int, str, str]:
    text = json.dumps({"type": "stock", "sku": sku, "left": left, "seq": seq, "ts": 0})
    return seq, f"stock:{sku}", text


def pin(seq: int) -> tuple[int, str, str]:
    return seq, "-", json.dumps({"type": "pin", "sku": "a", "seq": seq, "ts": 0})


async def test_idle_room_sends_at_once_then_coalesces_in_seq_order() -> None:
    room = LocalRoom("s001", coalesce_s=0.05)
    sink = RecordingSink()
    room.sinks.add(sink)
    room.dispatch(*stock(1, "a", 10))
    assert [seqs for _, seqs in sink.writes] == [[1]]  # leading edge
    room.dispatch(*stock(2, "a", 9))
    room.dispatch(*pin(3))
    room.dispatch(*stock(4, "b", 5))
    room.dispatch(*stock(5, "a", 8))  # replaces seq 2
    room.dispatch(*stock(5, "a", 8))  # a duplicate after a resubscribe: dropped
    assert len(sink.writes) == 1
    await asyncio.sleep(0.12)
    assert [seqs for _, seqs in sink.writes] == [[1], [3, 4, 5]]  # one write, seq order


async def test_every_stock_message_reaches_the_stock_listener_in_seq_order() -> None:
    """Coalescing is for sockets only: the listener (the purchase gate) hears them all."""
    heard: list[tuple[str, str, int, int]] = []
    room = LocalRoom("s001", coalesce_s=0.05, on_stock=lambda *a: heard.append(a))
    room.sinks.add(RecordingSink())
    for message in (stock(1, "a", 10), stock(2, "a", 9), pin(3), stock(4, "b", 5)):
        room.dispatch(*message)
    room.dispatch(*stock(4, "b", 5))  # a duplicate after a resubscribe: not heard again
    assert heard == [("s001", "a", 10, 1), ("s001", "a", 9, 2), ("s001", "b", 5, 4)]


async def test_slow_fan_out_on_an_idle_loop_waits_only_the_window() -> None:
    room = LocalRoom("s001", coalesce_s=0.01)
    sink = RecordingSink(cost_s=0.15)
    room.sinks.add(sink)
    room.dispatch(*stock(1, "a", 10))  # takes 0.15 s
    room.dispatch(*stock(2, "a", 9))
    await asyncio.sleep(0.5)
    assert [seqs for _, seqs in sink.writes] == [[1], [2]]
    # nothing else wanted the loop: waiting as long again (0.15 s) would only have
    # delayed the next event for every viewer
    assert sink.writes[1][0] - sink.writes[0][0] < 0.25


async def test_slow_fan_out_leaves_a_busy_loop_its_share() -> None:
    room = LocalRoom("s001", coalesce_s=0.01)
    # ~100 ms to write to all; the hub reads the clock every 64 sockets (~6 ms here), so
    # its slices follow the 10 ms turns of the other work
    sinks = [RecordingSink(cost_s=0.0001) for _ in range(1000)]
    room.sinks.update(sinks)
    loop = asyncio.get_running_loop()

    written = asyncio.Event()

    def taps() -> None:  # other work taking 10 ms per loop turn, like a sale's taps
        time.sleep(0.01)
        if all(len(s.writes) == 2 for s in sinks):
            written.set()
        else:
            loop.call_soon(taps)

    loop.call_soon(taps)
    room.dispatch(*stock(1, "a", 10))
    room.dispatch(*stock(2, "a", 9))
    await asyncio.wait_for(written.wait(), 5.0)
    for sink in sinks:
        assert [seqs for _, seqs in sink.writes] == [[1], [2]]
    first_done = max(s.writes[0][0] for s in sinks)
    # the other work ran between the slices for about as long as the writing (~100 ms):
    # the next flush waits about that long too, not just the 10 ms window
    assert min(s.writes[1][0] for s in sinks) - first_done >= 0.05


async def test_large_room_is_written_in_slices_that_let_other_work_run() -> None:
    room = LocalRoom("s001", coalesce_s=0.01)
    sinks = [RecordingSink(cost_s=0.0002) for _ in range(300)]  # ~60 ms to write to all
    room.sinks.update(sinks)
    written_when_probed: list[int] = []
    loop = asyncio.get_running_loop()

    def probe() -> None:  # other work (a tap, an engine answer) wanting the loop
        written_when_probed.append(sum(1 for s in sinks if s.writes))
        if written_when_probed[-1] < len(sinks):
            loop.call_soon(probe)

    loop.call_soon(probe)
    room.dispatch(*stock(1, "a", 10))  # starts writing at once: the room was idle
    room.dispatch(*stock(2, "a", 9))  # arrives mid-write: waits for the next flush
    await asyncio.sleep(0.5)
    # the probe ran between slices, while some sockets had the frame and some not yet
    assert any(0 < n < len(sinks) for n in written_when_probed)
    for sink in sinks:  # every socket: both messages, in order, one write each
        assert [seqs for _, seqs in sink.writes] == [[1], [2]]
    first_done = max(s.writes[0][0] for s in sinks)
    assert min(s.writes[1][0] for s in sinks) >= first_done  # flushes never overlap
