"""A pipelined connection to the engine for the purchase path.

Every purchase is one EVALSHA, and a flash sale brings thousands within a second. Through
redis-py's pool and Pipeline each batch costs several event-loop turns (wait for a pooled
connection, send, wait, read), and while a sale keeps the loop busy every turn is long:
purchases the engine had answered in a millisecond reached their buyers 1-2 s later.
Here a batch is written as soon as it is formed, hiredis parses replies inside
`data_received`, and each reply resolves its caller's future in that same callback.
Replies come back in the order commands were written on the connection, so one
connection carries any number of batches at once.

Used for plain TCP and unix-socket engines (the embedded one, a local Redis); anything
else (TLS, Cluster) goes through redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Command = tuple[str | bytes | int, ...]


def _error(reply: ResponseError) -> ResponseError:
    text = str(reply)
    return NoScriptError(text) if text.startswith("NOSCRIPT") else reply


class _Link(asyncio.Protocol):
    def __init__(self) -> None:
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.last_reply = 0.0  # loop time the engine last sent anything

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.last_reply = asyncio.get_running_loop().time()
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                future = self._waiting.popleft()
                if future.done():
                    continue  # its caller gave up (timeout); the answer is dropped
                if isinstance(reply, ResponseError):
                    future.set_exception(_error(reply))
                else:
                    future.set_result(reply)
        except hiredis.ProtocolError:
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        lost = RedisConnectionError(f"engine connection lost: {exc or 'closed'}")
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(lost)

    def send(self, commands: Sequence[Command], futures: Sequence[asyncio.Future[Any]]) -> None:
        assert self.transport is not None
        self.transport.write(b"".join(hiredis.pack_command(c) for c in commands))
        self._waiting.extend(futures)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class EngineLink:
    """One pipelined connection, opened on first use and again after a loss, with the
    address, credentials and database of an existing redis-py client."""

    def __init__(self, kwargs: dict[str, Any], *, unix: bool) -> None:
        self._kwargs = kwargs
        self._unix = unix
        self._link: _Link | None = None
        self._connecting: asyncio.Future[_Link] | None = None

    @classmethod
    def for_client(cls, redis: Redis) -> EngineLink | None:
        """None when the client's connections are of a kind this does not speak (TLS)."""
        pool = redis.connection_pool
        kind = pool.connection_class
        if kind is UnixDomainSocketConnection:
            return cls(dict(pool.connection_kwargs), unix=True)
        if kind is Connection:
            return cls(dict(pool.connection_kwargs), unix=False)
        return None

    @property
    def last_reply(self) -> float:
        return self._link.last_reply if self._link is not None else 0.0

    def ready(self) -> _Link | None:
        link = self._link
        return link if link is not None and not link.closed else None

    async def connect(self) -> _Link:
        link = self.ready()
        if link is not None:
            return link
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self._connecting)

    def abort(self) -> None:
        """Drop the connection (the engine stopped answering): callers still waiting get
        ConnectionError, the next call connects afresh."""
        if self._link is not None:
            self._link.abort()

    async def aclose(self) -> None:
        if self._link is not None and self._link.transport is not None:
            self._link.transport.close()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting

    async def _connect(self) -> _Link:
        loop = asyncio.get_running_loop()
        kw = self._kwargs
        hello: list[Command] = []
        if kw.get("password"):
            user, password = kw.get("username"), kw["password"]
            hello.append(("AUTH", user, password) if user else ("AUTH", password))
        if kw.get("db"):
            hello.append(("SELECT", kw["db"]))
        link: _Link | None = None
        try:
            async with asyncio.timeout(kw.get("socket_connect_timeout") or 1.0):
                if self._unix:
                    _, link = await loop.create_unix_connection(_Link, kw["path"])
                else:
                    _, link = await loop.create_connection(
                        _Link, kw.get("host", "localhost"), kw.get("port", 6379)
                    )
                if hello:
                    futures = [loop.create_future() for _ in hello]
                    link.send(hello, futures)
                    await asyncio.gather(*futures)
        except BaseException as exc:
            if link is not None:
                link.abort()
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"cannot reach the engine: {exc}") from exc
            if isinstance(exc, TimeoutError):
                raise RedisConnectionError("timed out connecting to the engine") from exc
            raise
        self._link = link
        return link
