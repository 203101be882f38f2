"""Process heartbeats: which liveshop server processes are alive, and what each holds.

Owns `ls:processes` (zset: process id -> heartbeat expiry), each process's heartbeat hash
and its admin inbox. Every process rewrites its hash every `interval_s` with a TTL and
moves its expiry forward; readers list only members whose score is in the future and
whose hash still exists, so a killed process drops out after the TTL with nobody
cleaning up. Contract: a heartbeat is a snapshot (lost ones are replaced by the next);
an admin request in an inbox is carried out at most once, by the process it names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from typing import Literal, Protocol, cast

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from liveshop import __version__
from liveshop.core import metrics
from liveshop.core.keys import PROCESSES, admin_reply, process_heartbeat, process_inbox

log = structlog.get_logger("liveshop.commerce.processes")

MAX_LISTED_SOCKETS = 200  # per heartbeat: enough to pick one, small enough to send often
REPLY_TTL_S = 60
INBOX_TTL_MS = 60_000  # an inbox of a process that died with requests in it goes away


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SocketInfo(msgspec.Struct, array_like=True, frozen=True):
    """One room socket of a process, as listed in its heartbeat."""

    conn: int  # the process's own connection number
    room: str
    kind: Literal["viewer", "console"]


class LocalSockets(Protocol):
    """This process's room sockets, as the realtime side knows them (wired by the app)."""

    def socket_count(self) -> int: ...

    def local_rooms(self) -> list[str]: ...

    def socket_list(self, limit: int) -> list[SocketInfo]: ...

    def close_socket(self, conn: int, reason: str) -> bool: ...


class ProcessInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A live process, from its last heartbeat."""

    process_id: str
    pid: int
    host: str
    version: str
    started_at: int
    heartbeat_at: int
    connections: int
    rooms: int
    loop_lag_ms: float
    sockets: list[SocketInfo]


class Request(msgspec.Struct, frozen=True):
    """What an admin asks one process to do (JSON in its inbox)."""

    request_id: str
    op: Literal["disconnect"]
    conn: int
    by: str


_sockets = msgspec.json.Decoder(list[SocketInfo])
_request = msgspec.json.Decoder(Request)


def global_conn_id(process_id: str, conn: int) -> str:
    """A connection's id across processes: `c<number>@<process id>`."""
    return f"c{conn}@{process_id}"


def parse_conn_id(conn_id: str) -> tuple[str, int] | None:
    number, at, process_id = conn_id.partition("@")
    if not at or not process_id or not number.startswith("c") or not number[1:].isdigit():
        return None
    return process_id, int(number[1:])


class LagMeter:
    """Event-loop lag: a timer due every `every_s`; how late it fires is the lag. Keeps
    the worst since the last `take()`, so a heartbeat reports its interval's peak."""

    def __init__(self, every_s: float = 0.1) -> None:
        self._every_s = every_s
        self._worst = 0.0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self._every_s
        self._handle = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self._worst = max(self._worst, loop.time() - self._due)
        self._due = loop.time() + self._every_s
        self._handle = loop.call_at(self._due, self._tick)

    def take(self) -> float:
        """The worst lag in ms since the last call."""
        worst, self._worst = self._worst, 0.0
        return round(worst * 1000, 1)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Processes:
    """This process's heartbeat loop, and the view of every live process."""

    def __init__(
        self,
        redis: Redis,
        sockets: LocalSockets,
        *,
        process_id: str,
        interval_s: float = 2.0,
        ttl_s: float = 10.0,
    ) -> None:
        self.process_id = process_id
        self._redis = redis
        self._sockets = sockets
        self._interval_s = interval_s
        self._ttl_ms = int(ttl_s * 1000)
        # Admin requests are polled more often than heartbeats: a disconnect is awaited.
        self._poll_s = min(0.25, interval_s)
        self._started_at = now_ms()
        self._host = socket.gethostname()
        self._lag = LagMeter()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        self._lag.start()
        try:
            next_beat = 0.0
            loop = asyncio.get_running_loop()
            while not self._stopping.is_set():
                try:
                    if loop.time() >= next_beat:
                        next_beat = loop.time() + self._interval_s
                        await self.beat()
                    await self.take_requests()
                except (RedisError, OSError) as exc:
                    log.warning("heartbeat failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._poll_s)
        finally:
            self._lag.stop()

    async def beat(self) -> None:
        sent = time.perf_counter()
        await self._redis.ping()
        metrics.engine_round_trip.observe(time.perf_counter() - sent)
        lag_ms = self._lag.take()
        metrics.loop_lag.set(lag_ms / 1000)
        at = now_ms()
        sockets = self._sockets.socket_list(MAX_LISTED_SOCKETS)
        key = process_heartbeat(self.process_id)
        fields: dict[FieldT, EncodableT] = {
            "pid": os.getpid(),
            "host": self._host,
            "version": __version__,
            "started_at": self._started_at,
            "heartbeat_at": at,
            "connections": self._sockets.socket_count(),
            "rooms": len(self._sockets.local_rooms()),
            "loop_lag_ms": lag_ms,
            "sockets": msgspec.json.encode(sockets),
        }
        # Not a transaction: the keys may sit on different Cluster shards, and a reader
        # needs both (hash present, score ahead) before it lists the process.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, self._ttl_ms)
            pipe.zadd(PROCESSES, {self.process_id: at + self._ttl_ms})
            # Housekeeping only: readers already ignore expired members.
            pipe.zremrangebyscore(PROCESSES, "-inf", at - self._ttl_ms)
            await pipe.execute()

    async def withdraw(self) -> None:
        """Leave the list at once on a clean shutdown."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(PROCESSES, self.process_id)
            pipe.delete(process_heartbeat(self.process_id))
            await pipe.execute()

    async def take_requests(self) -> None:
        raw = cast(list[bytes] | None, await self._redis.lpop(process_inbox(self.process_id), 100))
        for item in raw or ():
            try:
                req = _request.decode(item)
            except msgspec.DecodeError:
                log.warning("unreadable admin request", request=item[:200])
                continue
            closed = self._sockets.close_socket(req.conn, "closed by an operator")
            result = "closed" if closed else "not_found"
            log.warning(
                "connection closed by admin" if closed else "admin disconnect: no such connection",
                conn_id=req.conn,
                by=req.by,
                request_id=req.request_id,
            )
            await self._redis.set(admin_reply(req.request_id), result, ex=REPLY_TTL_S)

    # -- what any process can read or ask ---------------------------------------------------

    async def live(self) -> list[ProcessInfo]:
        """Every process whose heartbeat has not expired, oldest first."""
        members = cast(list[bytes], await self._redis.zrangebyscore(PROCESSES, now_ms(), "+inf"))
        ids = [m.decode() for m in members]
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for process_id in ids:
                pipe.hgetall(process_heartbeat(process_id))
            hashes: list[dict[bytes, bytes]] = await pipe.execute()
        found = []
        for process_id, h in zip(ids, hashes, strict=True):
            if not h:
                continue  # the hash expired first: that process is gone
            f = {k.decode(): v.decode() for k, v in h.items()}
            try:
                found.append(
                    ProcessInfo(
                        process_id=process_id,
                        pid=int(f["pid"]),
                        host=f["host"],
                        version=f["version"],
                        started_at=int(f["started_at"]),
                        heartbeat_at=int(f["heartbeat_at"]),
                        connections=int(f["connections"]),
                        rooms=int(f["rooms"]),
                        loop_lag_ms=float(f["loop_lag_ms"]),
                        sockets=_sockets.decode(f.get("sockets", "[]")),
                    )
                )
            except (KeyError, ValueError, msgspec.DecodeError):
                log.warning("unreadable heartbeat", process_id=process_id)
        return sorted(found, key=lambda p: (p.started_at, p.process_id))

    async def request_disconnect(
        self, process_id: str, conn: int, *, by: str, wait_s: float = 3.0
    ) -> str:
        """Ask `process_id` to close its connection `conn`; returns what it answered
        (`closed`, `not_found`) or `requested` if it has not answered within `wait_s`."""
        request_id = secrets.token_hex(8)
        inbox = process_inbox(process_id)
        body = msgspec.json.encode(Request(request_id, "disconnect", conn, by))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(inbox, body)
            pipe.pexpire(inbox, INBOX_TTL_MS)
            await pipe.execute()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while loop.time() < deadline:
            answer = cast(bytes | None, await self._redis.get(admin_reply(request_id)))
            if answer is not None:
                return answer.decode()
            await asyncio.sleep(0.05)
        return "requested"
