"""`AsgiWire`: the room socket's `Wire` over a plain ASGI `send`, for room sockets that
reach the gateway through an ASGI server (uvicorn's own websockets on the HTTP port, or
any other server). Owns only the order of what is sent; knows nothing of frames' bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from liveshop.realtime.frames import Frame

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class AsgiWire:
    """A `Wire` over plain ASGI `send`, for room sockets served by another ASGI server
    (or by uvicorn's own websocket implementation on the HTTP port): one task writes
    what is queued, in order. Slower (a task wake-up and an ASGI send per frame) but
    equivalent."""

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
