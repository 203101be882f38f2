"""Presence: viewer counts per room, correct across processes, self-healing.

Owns the presence hash and expiry zset of each room. Every process reports its local
viewer count per room once a second with a TTL; the room's count is the sum over
processes whose report has not expired, so a dead process drops out by itself within
the TTL. The `viewers` message (at most once a second per room) is emitted by the
same script, which also keeps the session peak.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from typing import Protocol

import structlog
from redis.exceptions import RedisError

from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import AnyRedis
from liveshop.engine.scripts import Call, Scripts, run_many

log = structlog.get_logger("liveshop.commerce.presence")


def new_process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LocalAudience(Protocol):
    """This process's viewers, as the realtime hub knows them (wired by the app)."""

    def local_viewers(self) -> dict[str, int]: ...

    def take_new_viewers(self) -> dict[str, list[str]]: ...


class Presence:
    def __init__(
        self,
        redis: AnyRedis,
        scripts: Scripts,
        audience: LocalAudience,
        *,
        ttl_ms: int = 5000,
        interval_s: float = 1.0,
    ) -> None:
        self.process_id = new_process_id()
        self._redis = redis
        self._scripts = scripts
        self._audience = audience
        self._withdrawn = False
        self._ttl_ms = ttl_ms
        self._interval_s = interval_s
        self._reported: dict[str, int] = {}
        self.totals: dict[str, tuple[int, int]] = {}  # room -> (viewers, peak), last seen
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def report(self) -> None:
        """Send this process's counts: every room with local viewers, and a last zero
        for rooms that just lost their last one."""
        counts = {} if self._withdrawn else self._audience.local_viewers()
        for room_id in self._reported.keys() - counts.keys():
            counts[room_id] = 0
        if not counts:
            return
        audience = {} if self._withdrawn else self._audience.take_new_viewers()
        calls: list[Call] = []
        for room_id, count in counts.items():
            keys = RoomKeys.of(room_id)
            calls.append(
                (
                    self._scripts.presence_report,
                    [
                        keys.presence,
                        keys.presence_exp,
                        keys.room,
                        keys.seq,
                        keys.history,
                        keys.audience,
                        keys.minutes,
                    ],
                    # and the distinct viewers of the session: the denominator of conversion
                    [
                        self.process_id,
                        count,
                        self._ttl_ms,
                        keys.channel,
                        *audience.get(room_id, ()),
                    ],
                )
            )
        replies = await run_many(self._redis, calls)
        for room_id, (total, peak) in zip(counts, replies, strict=True):
            self.totals[room_id] = (int(total), int(peak))
        self._reported = {room_id: c for room_id, c in counts.items() if c > 0}

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.report()
            except (RedisError, OSError) as exc:
                log.warning("presence report failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)

    async def withdraw(self) -> None:
        """Leave every room at once on a clean shutdown (no waiting for the TTL)."""
        self._withdrawn = True  # report zero everywhere
        await self.report()
