"""Room fan-out: Redis pub/sub in, one bounded queue per local socket out.

Owns this process's subscriptions (one channel per room with local sockets,
reference-counted: the first local socket subscribes, the last unsubscribes) and the
per-room coalescing of values that only need their latest state (stock per SKU,
viewer counts, offer units). Contract: room messages are at most once per socket,
in `seq` order; a socket may skip a coalesced value but always gets the latest one.
Talks to sockets only through the `Sink` protocol, never to Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, NamedTuple, Protocol

import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from liveshop.errors import ByeReason, CloseCode
from liveshop.keys import RoomKeys, room_id_from_channel
from liveshop.wire import text_frame

log = structlog.get_logger("liveshop.hub")


class Frame(NamedTuple):
    """One encoded server message: the same bytes go to every socket of the room."""

    seq: int | None  # None for replies to one client
    text: str
    data: bytes  # the websocket frame (server frames are unmasked: one for all sockets)

    @classmethod
    def of(cls, seq: int | None, text: str) -> Frame:
        return cls(seq, text, text_frame(text))


def _seq(frame: Frame) -> int:
    return frame.seq or 0


class Sink(Protocol):
    """Where the hub delivers frames: a socket's bounded outbound queue."""

    def deliver(self, frame: Frame) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class LocalRoom:
    """This process's sockets in one room, and what it knows of the room's stream."""

    def __init__(self, room_id: str, coalesce_s: float) -> None:
        self.room_id = room_id
        self.keys = RoomKeys.of(room_id)
        self.sinks: set[Sink] = set()
        self.consoles: set[Sink] = set()  # broadcaster sockets: they also get stats, hints
        self.viewers = 0  # local viewer sockets, reported by presence
        self.viewer_ids: dict[str, int] = {}  # local viewers (user or anon id) -> sockets
        self.unreported: set[str] = set()  # viewer ids not yet in the session's audience
        self.subscribed = asyncio.Event()
        self.last_seq = 0
        self.stock: dict[str, int] = {}  # latest `left` per SKU seen on the stream
        self.names: dict[str, str] = {}  # sku -> product name, for chat mentions
        self.base_seq: int | None = None  # the first snapshot's seq: sockets need what follows
        self.repairing: list[tuple[int, str, str]] | None = None  # held back during a repair
        self._coalesce_s = coalesce_s
        self._pending: dict[str, Frame] = {}
        self._last_flush = 0.0
        self._flush_timer: asyncio.TimerHandle | None = None

    def seed(self, seq: int, stock: dict[str, int], names: dict[str, str]) -> None:
        """Take figures from a snapshot at `seq` unless the stream is already newer."""
        self.names.update(names)
        if self.base_seq is None:
            self.base_seq = seq
        if seq >= self.last_seq:
            self.stock.update(stock)

    def dispatch(self, seq: int, ckey: str, text: str) -> None:
        """Handle one message from the room channel, in seq order."""
        if self.repairing is not None:
            self.repairing.append((seq, ckey, text))
            return
        if seq <= self.last_seq:
            return  # a duplicate after a resubscribe
        self.last_seq = seq
        frame = Frame.of(seq, text)
        if ckey.startswith("stock:"):
            self.stock[ckey[6:]] = orjson.loads(text)["left"]
        if ckey == "-":
            if text.startswith('{"type":"live","live":true'):
                # A new session counts everyone already watching as its audience.
                self.unreported.update(self.viewer_ids)
            # Ordered messages must not overtake coalesced ones with a lower seq.
            self.flush()
            self._broadcast(frame)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._pending and now - self._last_flush >= self._coalesce_s:
            self._last_flush = now  # leading edge: an idle room sends at once
            self._broadcast(frame)
            return
        self._pending[ckey] = frame
        if self._flush_timer is None:
            delay = max(0.0, self._last_flush + self._coalesce_s - now)
            self._flush_timer = loop.call_later(delay, self.flush)

    def flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self._pending:
            return
        frames = sorted(self._pending.values(), key=_seq)
        self._pending.clear()
        self._last_flush = asyncio.get_running_loop().time()
        for frame in frames:
            self._broadcast(frame)

    def _broadcast(self, frame: Frame) -> None:
        for sink in tuple(self.sinks):
            sink.deliver(frame)


class Hub:
    """Subscribes to the rooms that have local sockets and fans their messages out."""

    def __init__(self, redis: Redis | RedisCluster, *, coalesce_ms: int = 50) -> None:
        self._redis = redis
        self._coalesce_s = coalesce_ms / 1000
        # On a Cluster, sharded pub/sub keeps each room's messages on its own shard.
        self._sharded = isinstance(redis, RedisCluster)
        self.rooms: dict[str, LocalRoom] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._repairs: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub()
        if self._sharded:
            self._reader = asyncio.create_task(self._read_sharded(), name="hub-reader")
            return
        # A standing subscription keeps the connection open and the reader blocking.
        await self._pubsub.subscribe("ls:hub:keepalive")
        assert self._pubsub.connection is not None
        self._pubsub.connection.register_connect_callback(self._reconnected)
        self._reader = asyncio.create_task(self._read(), name="hub-reader")

    async def _reconnected(self, connection: object) -> None:
        """Runs after every (re)connect of the pub/sub connection, once redis-py has
        resubscribed: messages published while we were away are fetched from each room's
        history, and live ones are held back until they are in."""
        for room in self.rooms.values():
            if room.repairing is None:
                room.repairing = []
                self._repairs.add(asyncio.create_task(self._repair(room)))
        self._repairs = {t for t in self._repairs if not t.done()}

    async def _repair(self, room: LocalRoom) -> None:
        start = max(room.last_seq, room.base_seq or 0)
        missed: list[tuple[int, str, str]] = []
        gap = False
        try:
            if start:
                entries = await self._redis.xrange(room.keys.history, min=f"{start + 1}-0")
                current = int(await self._redis.get(room.keys.seq) or 0)
                for entry_id, fields in entries:
                    missed.append(
                        (int(entry_id.split(b"-")[0]), fields[b"k"].decode(), fields[b"m"].decode())
                    )
                gap = current > start and (not missed or missed[0][0] != start + 1)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            gap = True  # cannot tell what was missed: let the clients resume
        held, room.repairing = room.repairing or [], None
        if gap:
            log.warning("room stream gap after reconnect", room=room.room_id, since=start)
            for sink in tuple(room.sinks):
                sink.close(CloseCode.TRY_AGAIN_LATER, ByeReason.RESYNC.value)
        for seq, ckey, text in sorted(missed + held):
            room.dispatch(seq, ckey, text)

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    def local_viewers(self) -> dict[str, int]:
        return {room_id: room.viewers for room_id, room in self.rooms.items()}

    @contextlib.asynccontextmanager
    async def join(
        self, room_id: str, sink: Sink, *, viewer_id: str | None
    ) -> AsyncIterator[LocalRoom]:
        """Attach `sink` to the room for the duration of the block; subscribed on entry.
        `viewer_id` (user id, or an id for an anonymous viewer) counts it as a viewer."""
        viewer = viewer_id is not None
        async with self._lock:
            room = self.rooms.get(room_id)
            if room is None:
                room = self.rooms[room_id] = LocalRoom(room_id, self._coalesce_s)
                assert self._pubsub is not None
                if self._sharded:
                    await self._pubsub.ssubscribe(room.keys.channel)  # type: ignore[attr-defined]
                else:
                    await self._pubsub.subscribe(room.keys.channel)
            room.sinks.add(sink)
            room.viewers += viewer
            if viewer_id is not None:
                room.viewer_ids[viewer_id] = room.viewer_ids.get(viewer_id, 0) + 1
                room.unreported.add(viewer_id)
        try:
            # The snapshot that follows must not miss a message: wait for SUBSCRIBE.
            await asyncio.wait_for(room.subscribed.wait(), 5.0)
            yield room
        finally:
            async with self._lock:
                room.sinks.discard(sink)
                room.viewers -= viewer
                if viewer_id is not None:
                    left = room.viewer_ids.pop(viewer_id) - 1
                    if left:
                        room.viewer_ids[viewer_id] = left
                if not room.sinks and self.rooms.get(room_id) is room:
                    del self.rooms[room_id]
                    if self._pubsub is not None:
                        with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                            if self._sharded:
                                await self._pubsub.sunsubscribe(room.keys.channel)  # type: ignore[attr-defined]
                            else:
                                await self._pubsub.unsubscribe(room.keys.channel)

    async def _read(self) -> None:
        assert self._pubsub is not None
        backoff = 0.05
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                for room in self.rooms.values():
                    room.subscribed.clear()
                log.warning("pubsub disconnected", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
                    await self._pubsub.connect()  # resubscribes every channel on connect
                continue
            backoff = 0.05
            if message is None:
                continue
            self._on_message(message)

    async def _read_sharded(self) -> None:
        """The Cluster variant: one connection per shard, polled by redis-py."""
        pubsub: Any = self._pubsub
        backoff = 0.05
        lost = False
        while True:
            if not self.rooms:
                await asyncio.sleep(0.05)
                continue
            try:
                message = await pubsub.get_sharded_message(
                    ignore_subscribe_messages=False, timeout=0.5
                )
            except RuntimeError:  # between the last unsubscribe and the next subscribe
                await asyncio.sleep(0.05)
                continue
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                lost = True
                log.warning("sharded pubsub disconnected", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            if lost:
                lost = False
                await self._reconnected(None)
            if message is None:
                await asyncio.sleep(0.01 if self.rooms else 0.2)
                continue
            self._on_message(message)

    def _on_message(self, message: dict[str, object]) -> None:
        kind = message["type"]
        channel = message["channel"]
        if isinstance(channel, str):
            channel = channel.encode()
        assert isinstance(channel, bytes)
        if channel == b"ls:hub:keepalive":
            return
        room = self.rooms.get(room_id_from_channel(channel.decode()))
        if room is None:
            return
        if kind in ("subscribe", "ssubscribe"):
            room.subscribed.set()
        elif kind in ("message", "smessage"):
            data = message["data"]
            assert isinstance(data, bytes)
            seq, ckey, text = data.split(b" ", 2)
            room.dispatch(int(seq), ckey.decode(), text.decode())
