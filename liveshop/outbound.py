"""A room socket's outbound side: one bounded, ordered queue and the task that drains it.

Owns what goes to one client and in which order: replies and room frames share the
queue; room frames are held back until the welcome and then filtered by its seq; a
queue that overflows closes the socket `slow_consumer`. Talks to the ASGI `send`
callable only; knows nothing of rooms, Redis or the protocol rules.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
import structlog

from liveshop import protocol as p
from liveshop.errors import BYE_CLOSE_CODES, ByeReason
from liveshop.hub import Frame

log = structlog.get_logger("liveshop.outbound")

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_BYE_REASONS = frozenset(r.value for r in ByeReason)


class RoomSocket:
    """One client's outbound side: two queues drained by a writer task.

    Replies to this client (welcome, order_ack, error, pong) go ahead of queued room
    frames, so a buyer's answer never waits behind a backlog of stock updates; each
    queue keeps its own order, and room frames keep seq order. Until the welcome is
    sent, room frames are held back; the welcome then drops those the snapshot already
    covers (seq <= the snapshot's seq). Only the room-frame queue is bounded: replies
    are bounded by the inbound rate limit."""

    def __init__(self, send: Send, max_queue: int, conn_id: int) -> None:
        self.conn_id = conn_id
        self._send = send
        self._max = max_queue
        self._queue: deque[str] = deque()  # room frames (and the final bye)
        self._replies: deque[str] = deque()
        self._held: list[Frame] | None = []
        self._floor = 0
        self._wake = asyncio.Event()
        self._close: tuple[int, str] | None = None
        self.closed = asyncio.Event()
        self.lang: p.Lang = "zh-CN"
        self.busy = False  # a request is being handled: shutdown waits for its answer
        self.draining = False

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
        if len(self._queue) >= self._max:
            log.warning("slow consumer disconnected", conn_id=self.conn_id, queued=self._max)
            self.bye(ByeReason.SLOW_CONSUMER)
            return
        self._queue.append(frame.text)
        self._wake.set()

    def close(self, code: int, reason: str = "") -> None:
        """Close after what is queued; a `bye` reason is also said to the client."""
        if self._close is None:
            if reason in _BYE_REASONS:
                self._queue.append(p.encode(p.Bye(reason=reason)))
            self._close = (code, reason)
            self._wake.set()

    # Used by the gateway
    def reply(self, message: msgspec.Struct) -> None:
        if self._close is None:
            self._replies.append(p.encode(message))
            self._wake.set()

    def welcome(self, welcome: p.Welcome, missed: list[str]) -> None:
        """Send the welcome, the missed messages of a resume, then what was held back."""
        self._floor = welcome.seq
        self._replies.append(p.encode(welcome))
        self._queue.extend(missed)
        held, self._held = self._held or [], None
        for frame in held:
            self.deliver(frame)
        self._wake.set()

    def bye(self, reason: ByeReason, *, drop_queue: bool = True) -> None:
        if self._close is not None:
            return
        if drop_queue:
            self._queue.clear()
        self.close(BYE_CLOSE_CODES[reason], reason.value)

    def send_error_and_close(self, message: p.Error | p.Bye | None, code: int) -> None:
        if message is not None:
            self._replies.append(p.encode(message))
        self.close(code, message.code if isinstance(message, p.Error) else "")

    async def run(self) -> None:
        """Writer task: drain the queue in order; close the socket when told to."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._replies or self._queue:
                    text = (self._replies or self._queue).popleft()
                    await self._send({"type": "websocket.send", "text": text})
                if self._close is not None:
                    code, reason = self._close
                    await self._send({"type": "websocket.close", "code": code, "reason": reason})
                    return
        except (OSError, RuntimeError):
            return  # the peer is gone; the reader sees the disconnect
        finally:
            self.closed.set()
