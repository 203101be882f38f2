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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Protocol

import msgspec
import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from liveshop.core import metrics
from liveshop.core import protocol as p
from liveshop.core.errors import ByeReason, CloseCode
from liveshop.core.keys import RoomKeys, room_id_from_channel
from liveshop.realtime.wire import Frame

log = structlog.get_logger("liveshop.realtime.hub")


SLICE_S = 0.005  # a large room is written at least this long per loop turn
KEEPALIVE = "ls:hub:keepalive"  # a standing subscription: the reader always has one
_KEEPALIVE = KEEPALIVE.encode()  # as messages name it
LOST = (RedisConnectionError, RedisTimeoutError, OSError)
REPAIR_PATIENCE_S = 5.0  # how long a repair retries the engine before sockets resume
TO_USER = b"0 @ "  # lua/_orders.lua's prefix of a message for one user's sockets


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
# (room_id, user, sink, action, until): a user's sink closed by a kick or ban (until:
# epoch ms, 0 for a ban)
RemovedListener = Callable[[str, str, "Sink", str, int], None]
_REMOVAL = msgspec.json.Decoder(p.Moderation)
_REMOVING = (b'{"type":"moderation","action":"kick"', b'{"type":"moderation","action":"ban"')


async def _close(pubsub: PubSub) -> None:
    # redis-py's PubSub.aclose() has no annotations (8.0 and 8.1): a library-forced ignore.
    await pubsub.aclose()  # type: ignore[no-untyped-call]


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
        self.by_user: dict[str, set[Sink]] = {}  # signed-in user -> their sockets here
        self.unreported: set[str] = set()  # viewer ids not yet in the session's audience
        self.subscribed = asyncio.Event()
        # a joint room: the member stores whose channels carry its buyers' `order`s
        self.following: tuple[str, ...] = ()
        self.on_removed: RemovedListener | None = None  # the gateway's: remembers devices
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

    def to_user(self, data: bytes) -> None:
        """A message for one user's sockets ("0 @ <len>:<user><json>": an `order`), not
        part of the room stream: no seq, not coalesced, at most once."""
        length, _, rest = data[len(TO_USER) :].partition(b":")
        n = int(length)
        user = rest[:n].decode()
        sinks = self.by_user.get(user)
        if sinks:
            body = rest[n:]
            frame = Frame.of(None, body.decode())
            for sink in tuple(sinks):
                sink.deliver(frame)
            if body.startswith(_REMOVING):  # a kick or ban: this process closes them too
                self._remove(user, sinks, _REMOVAL.decode(body))

    def _remove(self, user: str, sinks: set[Sink], notice: p.Moderation) -> None:
        reason = ByeReason.KICKED if notice.action == "kick" else ByeReason.BANNED
        for sink in tuple(sinks):
            if self.on_removed is not None:
                self.on_removed(self.room_id, user, sink, notice.action, notice.until or 0)
            sink.close(CloseCode.REMOVED, reason.value)

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
        _measure(frames, total)
        others = now - flush_started - cost  # what the loop ran between the slices
        self._next_flush = loop.time() + max(self._coalesce_s, min(cost, others))
        if self._pending or self._ordered:
            self._flush_timer = loop.call_at(self._next_flush, self.flush)


def _measure(frames: list[Frame], sockets: int) -> None:
    """Metrics of one flush, once it is written to every socket: per frame, not per
    socket (a room has thousands)."""
    written_ms = time.time() * 1000
    for frame in frames:
        kind = metrics.message_type(frame.text)
        metrics.count(metrics.messages_sent, kind, amount=sockets)
        metrics.bytes_sent.inc(len(frame.data) * sockets)
        ts = metrics.message_ts_ms(frame.text)
        if ts is not None:
            metrics.fanout_lag.observe(max(0.0, written_ms - ts) / 1000)


class Hub:
    """Subscribes to the rooms that have local sockets and fans their messages out.
    `on_stock(room_id, sku, left, seq)` hears every `stock` message, in seq order, before
    the sockets do; `on_room_closed(room_id)` when the last local socket leaves a room.

    The reader task owns the pub/sub connection: when it is lost the reader drops that
    PubSub, opens a new one with backoff and subscribes every room it holds. Each room's
    subscription confirmation then starts the room's repair from its history stream
    (`_on_confirmed`), whoever caused the resubscribe, so nothing here depends on how or
    when redis-py reconnects."""

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
        self.rooms: dict[str, LocalRoom] = {}
        self._pubsub: PubSub | None = None  # None while the reader reconnects
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # subscribe/unsubscribe and (re)connect, one at a time
        self._repairs: dict[LocalRoom, asyncio.Task[None]] = {}
        self._repair_again: set[LocalRoom] = set()
        # store room id -> the local joint rooms following its channel (commerce.joint_rooms:
        # a routed order lives in the store's slot, its buyer's socket in the joint room)
        self._followed: dict[str, set[str]] = {}

    def _channels(self) -> list[str]:
        rooms = set(self.rooms) | set(self._followed)
        return [RoomKeys.of(r).channel for r in sorted(rooms)]

    async def start(self) -> None:
        async with self._lock:
            self._pubsub = await self._open()
        self._reader = asyncio.create_task(self._run(), name="hub-reader")

    async def _open(self) -> PubSub:
        """A new PubSub subscribed to every room held here (call with the lock held). On
        a Cluster it is redis-py's ClusterPubSub: sharded pub/sub keeps each room's
        messages on the shard that owns its keys."""
        pubsub = self._redis.pubsub()
        try:
            if isinstance(pubsub, ClusterPubSub):
                for channel in self._channels():
                    await pubsub.ssubscribe(channel)
            else:
                # The standing subscription keeps the connection open and the reader blocking.
                await pubsub.subscribe(KEEPALIVE, *self._channels())
        except BaseException:
            with contextlib.suppress(Exception):
                await _close(pubsub)
            raise
        return pubsub

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            pubsub = self._pubsub
            try:
                if pubsub is not None:
                    if isinstance(pubsub, ClusterPubSub):
                        await self._read_sharded(pubsub)
                    else:
                        await self._read(pubsub)
            except LOST as exc:
                log.warning("pubsub disconnected", error=str(exc), retry_in=backoff)
            # Lost: this PubSub is never read again (redis-py may reconnect and resubscribe
            # it on its own; we do not rely on that). Sockets that join meanwhile wait.
            async with self._lock:
                for room in self.rooms.values():
                    room.subscribed.clear()
                self._pubsub = None
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await _close(pubsub)
            while True:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                try:
                    async with self._lock:
                        self._pubsub = await self._open()
                    break
                except LOST as exc:
                    log.warning("pubsub reconnect failed", error=str(exc), retry_in=backoff)
            backoff = 0.05

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is not None:
                self._on_message(message)

    async def _read_sharded(self, pubsub: ClusterPubSub) -> None:
        """The Cluster variant: one connection per shard, polled by redis-py."""
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
            if message is None:
                await asyncio.sleep(0.01 if self.rooms else 0.2)
                continue
            self._on_message(message)

    def _on_message(self, message: Mapping[str, object]) -> None:
        kind = message["type"]
        channel = message["channel"]
        if isinstance(channel, str):
            channel = channel.encode()
        assert isinstance(channel, bytes)
        if channel == _KEEPALIVE:
            return
        room_id = room_id_from_channel(channel.decode())
        room = self.rooms.get(room_id)
        if room is None and room_id not in self._followed:
            return
        if kind in ("subscribe", "ssubscribe"):
            if room is not None:
                self._on_confirmed(room)
        elif kind in ("message", "smessage"):
            data = message["data"]
            assert isinstance(data, bytes)
            if data.startswith(TO_USER):
                if room is not None:
                    room.to_user(data)
                self._to_followers(room_id, data)
                return
            if room is None:
                return  # a followed store's room stream: not for the joint room's sockets
            seq_text, ckey, text = data.split(b" ", 2)
            seq = int(seq_text)
            if room.repairing is None and room.last_seq and seq > room.last_seq + 1:
                # seq has no holes (every emit takes the next one): some were missed,
                # e.g. over a connection redis-py re-established without telling us.
                log.warning("room stream gap", room=room.room_id, after=room.last_seq, got=seq)
                self._start_repair(room)
            room.dispatch(seq, ckey.decode(), text.decode())

    def _to_followers(self, store_id: str, data: bytes) -> None:
        """A store's message for one user: also to the joint rooms whose order it is."""
        for joint_id in self._followed.get(store_id, ()):
            joint = self.rooms.get(joint_id)
            if joint is not None and b'"via":' + orjson.dumps(joint_id) in data:
                joint.to_user(data)

    async def follow(self, room: LocalRoom, stores: Sequence[str]) -> None:
        """Have a joint room's buyers hear their orders' moves in its member stores (the
        `order` messages the stores' scripts publish for one user). Once per LocalRoom;
        it ends when the room's last local socket leaves."""
        async with self._lock:
            if room.following or self.rooms.get(room.room_id) is not room:
                return
            room.following = tuple(stores)
            for store in room.following:
                new = store not in self._followed and store not in self.rooms
                self._followed.setdefault(store, set()).add(room.room_id)
                if new and self._pubsub is not None:
                    with contextlib.suppress(*LOST):
                        await self._subscribe(self._pubsub, RoomKeys.of(store).channel)

    async def _unfollow(self, room: LocalRoom) -> None:
        """(lock held) The joint room closed here: drop its stores' channels nobody needs."""
        for store in room.following:
            joints = self._followed.get(store)
            if joints is None:
                continue
            joints.discard(room.room_id)
            if not joints:
                del self._followed[store]
                if store not in self.rooms and self._pubsub is not None:
                    with contextlib.suppress(*LOST):
                        await self._unsubscribe(self._pubsub, RoomKeys.of(store).channel)

    def _on_confirmed(self, room: LocalRoom) -> None:
        """The engine confirmed the room's subscription on the connection being read.

        Why a repair started here misses nothing: the engine writes the confirmation on
        the connection before any message published after the SUBSCRIBE, and a message
        published before it was already in the history (emit() appends to the history
        and publishes in one atomic script). The repair's XRANGE is sent after the
        confirmation was read, so the engine runs it later still: every message is
        either in the XRANGE answer or arrives here after the confirmation, where it is
        held until the repair is in (duplicates are dropped by seq). A room that has
        seen nothing yet needs no repair: its first socket reads the snapshot only
        after this confirmation."""
        room.subscribed.set()
        if room.last_seq or room.base_seq is not None:
            self._start_repair(room)

    def _start_repair(self, room: LocalRoom) -> None:
        """Hold the room's live messages (from now on) and fetch what it missed. A repair
        already under way may have read the history too early: it runs again."""
        if room in self._repairs:
            self._repair_again.add(room)
            return
        if room.repairing is None:
            room.repairing = []
        task = asyncio.create_task(self._repair(room))
        self._repairs[room] = task
        task.add_done_callback(lambda _: self._repairs.pop(room, None))

    async def _read_missed(self, room: LocalRoom, start: int) -> list[tuple[int, str, str]] | None:
        """The room's history after `start`, or None when it does not join up with `start`
        (trimmed, or the engine lost it). A pooled connection the engine dropped fails
        once before redis-py replaces it, and an engine replaying its AOF answers LOADING
        for a moment: both are retried for a few seconds, the live messages held meanwhile,
        before the room's sockets are sent away to resume."""
        delay = 0.05
        deadline = asyncio.get_running_loop().time() + REPAIR_PATIENCE_S
        while True:
            try:
                entries = await self._redis.xrange(room.keys.history, min=f"{start + 1}-0")
                current = int(await self._redis.get(room.keys.seq) or 0)
                break
            except LOST:  # BusyLoadingError (LOADING) is a ConnectionError
                if asyncio.get_running_loop().time() + delay > deadline:
                    return None  # cannot tell what was missed: let the clients resume
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
        missed: list[tuple[int, str, str]] = []
        for entry_id, fields in entries or ():
            # the client does not decode replies: ids and fields are bytes
            assert isinstance(entry_id, bytes)
            assert fields is not None
            ckey, text = fields[b"k"], fields[b"m"]
            assert isinstance(ckey, bytes)
            assert isinstance(text, bytes)
            missed.append((int(entry_id.split(b"-")[0]), ckey.decode(), text.decode()))
        if current > start and (not missed or missed[0][0] != start + 1):
            return None
        return missed

    async def _repair(self, room: LocalRoom) -> None:
        while True:
            self._repair_again.discard(room)
            start = max(room.last_seq, room.base_seq or 0)
            read = await self._read_missed(room, start)
            gap, missed = read is None, read or []
            held, room.repairing = room.repairing or [], None
            if gap:
                log.warning("room stream gap after reconnect", room=room.room_id, since=start)
                for sink in tuple(room.sinks):
                    sink.close(CloseCode.TRY_AGAIN_LATER, ByeReason.RESYNC.value)
            for seq, ckey, text in sorted(missed + held):
                room.dispatch(seq, ckey, text)
            if room not in self._repair_again:
                return
            room.repairing = []  # confirmed again while this pass read: read once more

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for task in list(self._repairs.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await _close(self._pubsub)

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

    def to_consoles(self, room_id: str, render: Callable[[p.Lang], str]) -> None:
        """Send `render(lang)` to the room's consoles here, encoded once per language."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        frames: dict[str, Frame] = {}
        for sink in tuple(room.consoles):
            lang: p.Lang = getattr(sink, "lang", "zh-CN")  # RoomSocket.lang, set at hello
            frame = frames.get(lang)
            if frame is None:
                frame = frames[lang] = Frame.of(None, render(lang))
            sink.deliver(frame)

    @contextlib.asynccontextmanager
    async def join(
        self, room_id: str, sink: Sink, *, viewer_id: str | None, user: str | None = None
    ) -> AsyncIterator[LocalRoom]:
        """Attach `sink` to the room for the duration of the block; subscribed on entry.
        `viewer_id` (user id, or an id for an anonymous viewer) counts it as a viewer;
        `user` (a signed-in user) gets the messages for that user (their orders)."""
        viewer = viewer_id is not None
        async with self._lock:
            room = self.rooms.get(room_id)
            if room is None:
                room = self.rooms[room_id] = LocalRoom(room_id, self._coalesce_s, self._on_stock)
                # While the reader reconnects there is no PubSub: its new one subscribes
                # every room; a failure here is the reader's to notice and repair too.
                if self._pubsub is not None:
                    with contextlib.suppress(*LOST):
                        await self._subscribe(self._pubsub, room.keys.channel)
            room.sinks.add(sink)
            if user is not None:
                room.by_user.setdefault(user, set()).add(sink)
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
                if user is not None:
                    mine = room.by_user.get(user)
                    if mine is not None:
                        mine.discard(sink)
                        if not mine:
                            del room.by_user[user]
                room.viewers -= viewer
                if viewer_id is not None:
                    left = room.viewer_ids.pop(viewer_id) - 1
                    if left:
                        room.viewer_ids[viewer_id] = left
                if not room.sinks and self.rooms.get(room_id) is room:
                    del self.rooms[room_id]
                    self._repair_again.discard(room)
                    if self._on_room_closed is not None:
                        self._on_room_closed(room_id)
                    await self._unfollow(room)
                    # a store a local joint room follows keeps its channel
                    if self._pubsub is not None and room_id not in self._followed:
                        with contextlib.suppress(*LOST):
                            await self._unsubscribe(self._pubsub, room.keys.channel)

    @staticmethod
    async def _subscribe(pubsub: PubSub, channel: str) -> None:
        if isinstance(pubsub, ClusterPubSub):
            await pubsub.ssubscribe(channel)
        else:
            await pubsub.subscribe(channel)

    @staticmethod
    async def _unsubscribe(pubsub: PubSub, channel: str) -> None:
        if isinstance(pubsub, ClusterPubSub):
            await pubsub.sunsubscribe(channel)
        else:
            await pubsub.unsubscribe(channel)
