"""HQ's league socket, `/ws/hq` (token role `hq`, room `*`): `hello` → `welcome` with
every room's row, then `league` with the rows that changed, at most once a second.

One feed per process, running only while it has an HQ socket: it reads every room's row
(commerce.league, one pipelined round per shard) each `interval_s` and sends each socket
the fields that changed since what *that* socket was last sent. A socket whose transport
is paused is skipped, not queued: its next message carries everything that changed
meanwhile, so a slow HQ laptop costs nothing and never reads stale rows in a backlog.
The socket holds no state a restart could lose: an HQ page that reconnects to any process
gets full rows in the welcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable

import structlog

from liveshop.commerce.league import League, changes
from liveshop.core import identity
from liveshop.core import protocol as p
from liveshop.core.errors import ByeReason, ErrorCode, TokenError
from liveshop.realtime.outbound import RoomSocket
from liveshop.realtime.wire import Wire

log = structlog.get_logger("liveshop.app.league_socket")

HQ_SOCKET_PATH = "/ws/hq"
HELLO_TIMEOUT_S = 10.0
Inbound = Callable[[], Awaitable[str | bytes | None]]
_conn_ids = itertools.count(1)


class HqSocket:
    __slots__ = ("out", "sent", "user", "wire")

    def __init__(self, wire: Wire, out: RoomSocket, user: str) -> None:
        self.wire = wire
        self.out = out
        self.user = user
        self.sent: dict[str, p.LeagueRow] = {}


class LeagueSockets:
    def __init__(
        self,
        league: League,
        room_ids: Callable[[], Awaitable[list[str]]],
        secret: str,
        *,
        interval_s: float = 1.0,
    ) -> None:
        self._league = league
        self._room_ids = room_ids
        self._secret = secret
        self._interval_s = interval_s
        self.sockets: set[HqSocket] = set()
        self._feed: asyncio.Task[None] | None = None

    async def serve(self, wire: Wire, inbound: Inbound) -> None:
        """Serve one accepted `/ws/hq` socket until it is over."""
        out = RoomSocket(wire, 64, next(_conn_ids))
        try:
            hello = await self._await_hello(out, inbound)
            if hello is None:
                return
            try:
                claims = identity.verify(self._secret, hello.token or "")
            except TokenError as exc:
                out.bye(exc.reason)
                return
            if claims.role != "hq" or claims.room != "*":
                out.reply(p.error(ErrorCode.FORBIDDEN, "the league is for hq tokens (room *)"))
                out.bye(ByeReason.FORBIDDEN)
                return
            sock = HqSocket(wire, out, claims.sub)
            rows = await self._league.rows(await self._room_ids())
            sock.sent = rows
            out.reply(
                p.LeagueWelcome(role="hq", user=claims.sub, rows=list(rows.values()), ts=_now())
            )
            self.sockets.add(sock)
            self._start_feed()
            try:
                await self._read(out, inbound)
            finally:
                self.sockets.discard(sock)
        finally:
            out.close(1000)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(out.wait_closed(), 5.0)

    async def _await_hello(self, out: RoomSocket, inbound: Inbound) -> p.Hello | None:
        try:
            data = await asyncio.wait_for(inbound(), HELLO_TIMEOUT_S)
        except TimeoutError:
            out.bye(ByeReason.HELLO_TIMEOUT, drop_queue=False)
            return None
        if data is None:
            return None
        msg = p.decode_client(data)
        if not isinstance(msg, p.Hello):
            text = msg.message if isinstance(msg, p.DecodeFailure) else "say hello first"
            out.send_error_and_close(p.error(ErrorCode.BAD_MESSAGE, text), 1008)
            return None
        return msg

    async def _read(self, out: RoomSocket, inbound: Inbound) -> None:
        while not out.closed:
            data = await inbound()
            if data is None:
                return
            msg = p.decode_client(data)
            if isinstance(msg, p.Ping):
                out.reply(p.Pong(t=msg.t))
            else:
                out.reply(p.error(ErrorCode.BAD_MESSAGE, "the league socket takes ping only"))

    def _start_feed(self) -> None:
        if self._feed is None or self._feed.done():
            self._feed = asyncio.create_task(self._run(), name="league-feed")

    async def _run(self) -> None:
        while self.sockets:
            started = asyncio.get_running_loop().time()
            try:
                await self.tick()
            except Exception as exc:  # the engine away: the next tick catches up
                log.warning("league read failed; retrying", error=repr(exc))
            spent = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(0.05, self._interval_s - spent))

    async def tick(self) -> None:
        rows = await self._league.rows(await self._room_ids())
        now = _now()
        for sock in tuple(self.sockets):
            if sock.out.closed or not sock.wire.can_write:
                continue  # paused: the next message carries what changed meanwhile
            diff = changes(sock.sent, rows)
            if diff:
                sock.out.reply(p.League(rows=diff, ts=now))
            sock.sent = rows

    async def stop(self) -> None:
        for sock in tuple(self.sockets):
            sock.out.bye(ByeReason.SERVER_SHUTDOWN, drop_queue=False)
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed


def _now() -> int:
    return time.time_ns() // 1_000_000
