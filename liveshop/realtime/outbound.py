"""A room socket's outbound side: what goes to one client, in which order, and when.

Frames are written straight to the socket's `Wire` while its transport takes them (no
task, no await: the hub's fan-out loop writes one pre-framed `bytes` per viewer). Only
while the transport is paused do frames wait, in two bounded queues drained when it
resumes; a room-frame queue that overflows closes the socket `slow_consumer`. Room
frames are held back until the welcome and then filtered by its seq. Knows nothing of
rooms, Redis or the protocol rules.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

import msgspec
import structlog

from liveshop.core import metrics
from liveshop.core import protocol as p
from liveshop.core.errors import BYE_CLOSE_CODES, ByeReason
from liveshop.realtime.frames import Frame
from liveshop.realtime.wire import Wire

log = structlog.get_logger("liveshop.realtime.outbound")

_BYE_REASONS = frozenset(r.value for r in ByeReason)


class RoomSocket:
    """One client's outbound side.

    Replies to this client (welcome, order_ack, error, pong) go ahead of queued room
    frames, so a buyer's answer never waits behind a backlog of stock updates; each
    queue keeps its own order, and room frames keep seq order. Until the welcome is
    sent, room frames are held back; the welcome then drops those the snapshot already
    covers (seq <= the snapshot's seq). Only the room-frame queue is bounded: replies
    are bounded by the inbound rate limit. Invariant: a queue holds frames only while
    the transport is paused, so a frame is written at once or after everything queued."""

    __slots__ = (
        "_close",
        "_closed",
        "_closed_waiter",
        "_floor",
        "_held",
        "_max",
        "_queue",
        "_replies",
        "_wire",
        "busy",
        "conn_id",
        "device",
        "draining",
        "lang",
    )

    def __init__(self, wire: Wire, max_queue: int, conn_id: int) -> None:
        self.conn_id = conn_id
        self._wire = wire
        self._max = max_queue
        # Created while the transport is paused only: a deque costs 760 bytes per socket.
        self._queue: deque[Frame] | None = None  # room frames (and the final bye)
        self._replies: deque[Frame] | None = None
        self._held: list[Frame] | None = []
        self._floor = 0
        self._close: tuple[int, str] | None = None  # asked to close after what is queued
        self._closed = False  # the close frame is out (or the connection is gone)
        self._closed_waiter: asyncio.Future[None] | None = None
        self.lang: p.Lang = "zh-CN"
        self.device: str | None = None  # moderation's device key (cookie and address)
        self.busy = False  # a request is being handled: shutdown waits for its answer
        self.draining = False
        wire.on_writable(self._flush)

    # Sink protocol (called by the hub, never awaits)
    def deliver(self, frame: Frame) -> None:
        if self._close is not None:
            return
        if self._held is not None:
            self._held.append(frame)
            if len(self._held) > self._max:
                self.bye(ByeReason.SLOW_CONSUMER)
            return
        if frame.seq is not None and frame.seq <= self._floor:
            return
        queue = self._queue
        if not queue and self._wire.can_write:
            self._wire.write(frame)
            return
        if queue is None:
            queue = self._queue = deque()
        elif len(queue) >= self._max:
            log.warning("slow consumer disconnected", conn_id=self.conn_id, queued=self._max)
            self.bye(ByeReason.SLOW_CONSUMER)
            return
        queue.append(frame)

    def deliver_joined(self, frames: Sequence[Frame], data: bytes) -> None:
        """Several room frames in seq order, `data` being their bytes joined: one write
        when nothing is held or queued, frame by frame otherwise."""
        if (
            self._held is None
            and not self._queue
            and self._close is None
            and (frames[0].seq or 0) > self._floor
            and self._wire.can_write
        ):
            self._wire.write_joined(frames, data)
            return
        for frame in frames:
            self.deliver(frame)

    def close(self, code: int, reason: str = "") -> None:
        """Close after what is queued; a `bye` reason is also said to the client."""
        if self._close is None:
            if reason in _BYE_REASONS:
                self._send(Frame.of(None, p.encode(p.Bye(reason=reason))))
            self._close = (code, reason)
            self._flush()

    # Used by the gateway
    def reply(self, message: msgspec.Struct) -> None:
        if self._close is None:
            frame = Frame.of(None, p.encode(message))
            _count_sent(frame)
            self._reply(frame)

    def _reply(self, frame: Frame) -> None:
        if not self._replies and self._wire.can_write:
            self._wire.write(frame)
        else:
            if self._replies is None:
                self._replies = deque()
            self._replies.append(frame)

    def _send(self, frame: Frame) -> None:
        """A room frame past deliver()'s checks: now, or after what is queued."""
        if not self._queue and self._wire.can_write:
            self._wire.write(frame)
            return
        if self._queue is None:
            self._queue = deque()
        self._queue.append(frame)

    def welcome(self, welcome: p.Welcome, missed: list[str]) -> None:
        """Send the welcome, the missed messages of a resume, then what was held back."""
        self._floor = welcome.seq
        held, self._held = self._held or [], None
        if self._close is None and not self._replies and not self._queue and self._wire.can_write:
            # One write, not one per message: after a reconnect storm every viewer
            # resumes hundreds of missed messages at once.
            frames = [Frame.of(None, p.encode(welcome))]
            frames += [Frame.of(None, text) for text in missed]
            frames += [f for f in held if f.seq is None or f.seq > self._floor]  # as deliver()
            self._wire.write_joined(frames, b"".join(f.data for f in frames))
            return
        self.reply(welcome)
        for text in missed:
            self._send(Frame.of(None, text))
        for frame in held:
            self.deliver(frame)

    def bye(self, reason: ByeReason, *, drop_queue: bool = True) -> None:
        """Say goodbye. With `drop_queue`, at once: the queued room frames are dropped
        and the bye is written even to a paused transport (a client that stopped reading
        must not hold its goodbye back); without it, after what is queued."""
        if self._close is not None:
            return
        if reason is ByeReason.SLOW_CONSUMER:
            metrics.slow_consumer_drops.inc()
        if not drop_queue:
            self.close(BYE_CLOSE_CODES[reason], reason.value)
            return
        self._queue = None
        self._close = (BYE_CLOSE_CODES[reason], reason.value)
        while self._replies:
            frame = self._replies.popleft()
            self._wire.write(frame)
        bye = Frame.of(None, p.encode(p.Bye(reason=reason.value)))
        self._wire.write(bye)
        self._finish()

    def send_error_and_close(self, message: p.Error | p.Bye | None, code: int) -> None:
        if message is not None and self._close is None:
            self._reply(Frame.of(None, p.encode(message)))
        self.close(code, message.code if isinstance(message, p.Error) else "")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str | None:
        """Why this side closed (a bye reason or an error code), None if it did not."""
        return self._close[1] or str(self._close[0]) if self._close is not None else None

    async def wait_closed(self) -> None:
        if not self._closed:
            if self._closed_waiter is None:
                self._closed_waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._closed_waiter)

    def _flush(self) -> None:
        """Write what is queued while the transport takes it; close when asked to and
        everything is out. Also called by the wire when a paused transport drains."""
        if self._closed:
            return
        wire = self._wire
        if not wire.open:
            self._queue = self._replies = None
            self._mark_closed()
            return
        while wire.can_write and (self._replies or self._queue):
            waiting = self._replies or self._queue
            assert waiting is not None  # the loop condition: one of them has frames
            frame = waiting.popleft()
            wire.write(frame)
        if not self._replies:
            self._replies = None
        if not self._queue:
            self._queue = None
        if self._close is not None and self._replies is None and self._queue is None:
            self._finish()

    def _finish(self) -> None:
        assert self._close is not None
        self._wire.close(*self._close)
        self._mark_closed()

    def _mark_closed(self) -> None:
        self._closed = True
        if self._closed_waiter is not None and not self._closed_waiter.done():
            self._closed_waiter.set_result(None)


def _count_sent(frame: Frame) -> None:
    metrics.count(metrics.messages_sent, metrics.message_type(frame.text))
    metrics.bytes_sent.inc(len(frame.data))
