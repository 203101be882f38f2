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
else (TLS, Cluster) goes through redis-py. Built only from public pieces: the engine's
URL (parsed here), an asyncio connection of its own, hiredis' `Reader` and
`pack_command`, and AUTH/SELECT sent as ordinary commands; redis-py supplies only its
exception classes, so callers handle one set of errors whichever path a batch took.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Command = tuple[str | bytes | int, ...]

# hiredis.pyi declares the argument a 1-tuple (`Tuple[X]`, without `...`); the function
# packs a command of any length, as its docstring and redis-py's own use say.
_pack = cast(Callable[[Command], bytes], hiredis.pack_command)


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
        # Protocol's signature names the base class; a stream connection's is a Transport.
        self.transport = cast(asyncio.Transport, transport)

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
        self.transport.write(b"".join(_pack(c) for c in commands))
        self._waiting.extend(futures)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


@dataclass(frozen=True)
class Address:
    """Where the engine listens and how to log in, from a redis:// or unix:// URL."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None  # a unix socket
    username: str | None = None
    password: str | None = None
    db: int = 0

    @classmethod
    def parse(cls, url: str) -> Address | None:
        """The URL forms redis-py documents for `Redis.from_url`, read the same way
        (user and password from the userinfo or the query, db from the path or the
        query); None for what this link does not speak (rediss://: TLS)."""
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        username = unquote(parts.username) if parts.username else query.get("username")
        password = unquote(parts.password) if parts.password else query.get("password")
        db = query.get("db")
        if parts.scheme == "unix":
            return cls(
                path=unquote(parts.path), username=username, password=password, db=int(db or 0)
            )
        if parts.scheme != "redis":
            return None
        if db is None and parts.path.strip("/"):
            db = parts.path.strip("/")
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or 6379,
            username=username or None,
            password=password,
            db=int(db or 0),
        )

    def login(self) -> list[Command]:
        """What a new connection sends first: the ordinary AUTH and SELECT commands."""
        hello: list[Command] = []
        if self.password:
            hello.append(
                ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            )
        if self.db:
            hello.append(("SELECT", self.db))
        return hello


class EngineLink:
    """One pipelined connection, opened on first use and again after a loss."""

    def __init__(self, address: Address, *, connect_timeout_s: float = 1.0) -> None:
        self._address = address
        self._connect_timeout = connect_timeout_s
        self._link: _Link | None = None
        self._connecting: asyncio.Future[_Link] | None = None

    @classmethod
    def for_url(cls, url: str, *, connect_timeout_s: float = 1.0) -> EngineLink | None:
        """None when the URL is of a kind this does not speak (TLS)."""
        address = Address.parse(url)
        if address is None:
            return None
        return cls(address, connect_timeout_s=connect_timeout_s)

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
        address = self._address
        hello = address.login()
        link: _Link | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                if address.path is not None:
                    _, link = await loop.create_unix_connection(_Link, address.path)
                else:
                    _, link = await loop.create_connection(_Link, address.host, address.port)
                if hello:
                    futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in hello]
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
