"""Room fan-out: Redis pub/sub in, pre-framed bytes out to every local socket.

Owns this process's subscriptions (one channel per room with local sockets,
reference-counted: the first local socket subscribes, the last unsubscribes) and the
per-room pacing of what goes out: values that only need their latest state (stock per
SKU, viewer counts, offer units) are coalesced, and everything that waits is sent
together, in seq order, as one write per socket. Contract: room messages are at most
once per socket, in `seq` order; a socket may skip a coalesced value but always gets
the latest one. Talks to sockets only through the `Sink` protocol, never to Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import msgspec
import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from liveshop.core import protocol as p
from liveshop.core.errors import ByeReason, CloseCode
from liveshop.core.keys import RoomKeys, room_id_from_channel
from liveshop.realtime.wire import Frame

log = structlog.get_logger("liveshop.realtime.hub")


SLICE_S = 0.005  # a large room is written at least this long per loop turn


def _seq(frame: Frame) -> int:
    return frame.seq or 0


_live = msgspec.json.Decoder(p.Live)


def starts_a_session(text: str) -> bool:
    """A `live` message with live=true. Ordered messages are few (not stock or viewers),
    so a substring test first, then a real decode: no reliance on field order."""
    if '"live"' not in text:
        return False
    try:
        return _live.decode(text).live
    except msgspec.DecodeError:  # ValidationError included
        return False  # another type that mentions "live"


StockListener = Callable[[str, str, int, int], None]  # (room_id, sku, left, seq)


class Sink(Protocol):
    """Where the hub delivers frames: a socket's bounded outbound queue."""

    def deliver(self, frame: Frame) -> None: ...

    def deliver_joined(self, frames: Sequence[Frame], data: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class LocalRoom:
    """This process's sockets in one room, and what it knows of the room's stream."""

    def __init__(
        self, room_id: str, coalesce_s: float, on_stock: StockListener | None = None
    ) -> None:
        self.room_id = room_id
        self.keys = RoomKeys.of(room_id)
        self.sinks: set[Sink] = set()
        self.consoles: set[Sink] = set()  # broadcaster sockets: they also get stats, hints
        self.viewers = 0  # local viewer sockets, reported by presence
        self.viewer_ids: dict[str, int] = {}  # local viewers (user or anon id) -> sockets
        self.unreported: set[str] = set()  # viewer ids not yet in the session's audience
        self.subscribed = asyncio.Event()
        self.last_seq = 0
        self._on_stock = on_stock
        self.names: dict[str, str] = {}  # sku -> product name, for chat mentions
        self.base_seq: int | None = None  # the first snapshot's seq: sockets need what follows
        self.repairing: list[tuple[int, str, str]] | None = None  # held back during a repair
        self._coalesce_s = coalesce_s
        self._pending: dict[str, Frame] = {}  # coalesced values: the latest per key
        self._ordered: list[Frame] = []  # never skipped, in seq order
        self._next_flush = 0.0  # loop time before which frames wait
        self._flush_timer: asyncio.TimerHandle | None = None
        self._sending = False  # a flush is being written, slice by slice

    def seed(self, seq: int, names: dict[str, str]) -> None:
        """Take what a snapshot at `seq` says: product names, and where sockets start."""
        self.names.update(names)
        if self.base_seq is None:
            self.base_seq = seq

    def dispatch(self, seq: int, ckey: str, text: str) -> None:
        """Handle one message from the room channel, in seq order."""
        if self.repairing is not None:
            self.repairing.append((seq, ckey, text))
            return
        if seq <= self.last_seq:
            return  # a duplicate after a resubscribe
        self.last_seq = seq
        frame = Frame.of(seq, text)
        if ckey == "-":
            if starts_a_session(text):
                # A new session counts everyone already watching as its audience.
                self.unreported.update(self.viewer_ids)
            self._ordered.append(frame)
        else:
            if ckey.startswith("stock:") and self._on_stock is not None:
                self._on_stock(self.room_id, ckey[6:], orjson.loads(text)["left"], seq)
            self._pending[ckey] = frame
        if self._sending:
            return  # the flush being written schedules the next one
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_flush:
            self.flush()  # leading edge: an idle room sends at once
        elif self._flush_timer is None:
            self._flush_timer = loop.call_at(self._next_flush, self.flush)

    def flush(self) -> None:
        """Send what waits, in seq order, as one write per socket.

        A large room is written a slice of sockets per loop turn (a 10,000-viewer room
        takes 150-200 ms to write to), so taps and engine answers are handled between
        slices instead of waiting for the whole room. The next flush starts after this
        one is written and waits at least the coalescing window, and as long as the other
        work between its slices took (at most the writing's own cost): under a sale's taps
        one room's fan-out gets at most half of the event loop, so purchases, replies and
        the persister keep their turn however large the room, while on an idle loop the
        next event goes out without a wait that would protect nothing."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._sending or (not self._pending and not self._ordered):
            return
        frames = self._ordered
        if self._pending:
            frames = sorted([*frames, *self._pending.values()], key=_seq)
            self._pending = {}
        self._ordered = []
        # Sockets that join later are not written to: their welcome's snapshot already
        # covers these frames (they were published before it was read).
        sinks = tuple(self.sinks)
        data = b"".join(frame.data for frame in frames) if len(frames) > 1 else None
        self._sending = True
        now = time.perf_counter()
        self._write_slice(frames, data, sinks, 0, 0.0, now, now)

    def _write_slice(
        self,
        frames: list[Frame],
        data: bytes | None,
        sinks: tuple[Sink, ...],
        start: int,
        cost: float,
        paused_at: float,
        flush_started: float,
    ) -> None:
        """Write to sockets for as long as the loop took to come back here (at least
        SLICE_S): half of the loop whether it is idle or busy with a sale's taps."""
        started = time.perf_counter()
        deadline = started + max(SLICE_S, started - paused_at)
        total = len(sinks)
        frame = frames[0]
        i = start
        while i < total:
            end = i + 64  # the clock is read once per 64 sockets
            if data is None:
                for sink in sinks[i:end]:
                    sink.deliver(frame)
            else:
                for sink in sinks[i:end]:
                    sink.deliver_joined(frames, data)
            i = end
            if time.perf_counter() >= deadline:
                break
        now = time.perf_counter()
        cost += now - started
        loop = asyncio.get_running_loop()
        if i < total:
            loop.call_soon(self._write_slice, frames, data, sinks, i, cost, now, flush_started)
            return
        self._sending = False
        others = now - flush_started - cost  # what the loop ran between the slices
        self._next_flush = loop.time() + max(self._coalesce_s, min(cost, others))
        if self._pending or self._ordered:
            self._flush_timer = loop.call_at(self._next_flush, self.flush)


class Hub:
    """Subscribes to the rooms that have local sockets and fans their messages out.
    `on_stock(room_id, sku, left, seq)` hears every `stock` message, in seq order, before
    the sockets do; `on_room_closed(room_id)` when the last local socket leaves a room."""

    def __init__(
        self,
        redis: Redis | RedisCluster,
        *,
        coalesce_ms: int = 50,
        on_stock: StockListener | None = None,
        on_room_closed: Callable[[str], None] | None = None,
    ) -> None:
        self._redis = redis
        self._on_stock = on_stock
        self._on_room_closed = on_room_closed
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

    # What commerce's loops need (presence.LocalAudience, stats.ConsoleOutlet); they
    # get the hub from the app and never import this module.
    def local_viewers(self) -> dict[str, int]:
        return {room_id: room.viewers for room_id, room in self.rooms.items()}

    def take_new_viewers(self) -> dict[str, list[str]]:
        """Viewer ids that joined since the last call, per room (the session audience)."""
        new = {}
        for room_id, room in self.rooms.items():
            if room.unreported:
                new[room_id] = list(room.unreported)
                room.unreported.clear()
        return new

    def local_rooms(self) -> list[str]:
        return list(self.rooms)

    def console_rooms(self) -> list[str]:
        return [room_id for room_id, room in self.rooms.items() if room.consoles]

    def product_names(self, room_id: str) -> dict[str, str]:
        room = self.rooms.get(room_id)
        return dict(room.names) if room is not None else {}

    def to_consoles(self, room_id: str, render: Callable[[str], str]) -> None:
        """Send `render(lang)` to the room's consoles here, encoded once per language."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        frames: dict[str, Frame] = {}
        for sink in tuple(room.consoles):
            lang = getattr(sink, "lang", "zh-CN")
            frame = frames.get(lang)
            if frame is None:
                frame = frames[lang] = Frame.of(None, render(lang))
            sink.deliver(frame)

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
                room = self.rooms[room_id] = LocalRoom(room_id, self._coalesce_s, self._on_stock)
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
                    if self._on_room_closed is not None:
                        self._on_room_closed(room_id)
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
