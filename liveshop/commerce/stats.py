"""Live figures for the broadcaster: `stats` every second and coaching `hint`s.

Owns the engagement buckets (likes and chat mentions per SKU in 10-second buckets)
and the per-process loop that, for each room with a broadcaster socket here, reads
the room's own Redis figures (never SQLite), sends `stats`, runs `coaching`, and
sweeps expired offers of every local room. Figures are the live session's:
conversion = distinct buyers / distinct viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

import msgspec
import structlog
from redis.exceptions import RedisError

from liveshop.commerce import coaching
from liveshop.commerce.groups import group_from_hash, group_stats
from liveshop.commerce.groups import visible as group_visible
from liveshop.commerce.offers import Offers
from liveshop.commerce.polls import read_poll
from liveshop.commerce.presence import Presence
from liveshop.commerce.reconcile import decode_figures
from liveshop.commerce.rooms import now_ms, offer_from_hash, session_gmv, session_units
from liveshop.core import protocol as p
from liveshop.core.keys import RECONCILE, RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.connections import AnyRedis

log = structlog.get_logger("liveshop.commerce.stats")

BUCKET_S = 10
POLL_HINT_MS = 3 * 60_000  # a closed poll's winner is worth a hint this long

BUCKET_TTL_S = 600
TOP_N = 5


def bucket_of(ts_ms: int) -> int:
    return ts_ms // (BUCKET_S * 1000)


async def record_interaction(redis: AnyRedis, room_id: str, skus: list[str], at_ms: int) -> None:
    """Count a like or a chat mention of each SKU in the current bucket."""
    if not skus:
        return
    key = RoomKeys.of(room_id).engagement(bucket_of(at_ms))
    async with redis.pipeline(transaction=False) as pipe:
        for sku in skus:
            pipe.hincrby(key, sku, 1)
        pipe.expire(key, BUCKET_TTL_S)
        await pipe.execute()


async def claim_hints(
    redis: AnyRedis, room_id: str, candidates: list[coaching.Candidate]
) -> list[coaching.Candidate]:
    """The candidates whose cooldown is free, claiming it: `SET NX PX` per (code, subject)
    in Redis, so the cooldown outlives this process's memory (a console reconnect, another
    process taking the room) and only one process sends a given hint."""
    if not candidates:
        return []
    keys = RoomKeys.of(room_id)
    async with redis.pipeline(transaction=False) as pipe:
        for c in candidates:
            key = keys.hint_cooldown(c.code, c.subject)
            pipe.set(key, 1, nx=True, px=coaching.COOLDOWN_MS[c.code])
        claimed = await pipe.execute()
    fired = [c for c, ok in zip(candidates, claimed, strict=True) if ok]
    if fired:  # the session's count (HQ's league) and log (the post-live review)
        now = now_ms()
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(keys.stats, "hints", len(fired))
            for c in fired:
                pipe.rpush(keys.hints_log, _fired(c, now))
            await pipe.execute()
    return fired


def _fired(c: coaching.Candidate, now: int) -> bytes:
    zh, en = coaching.render(c, "zh-CN", now), coaching.render(c, "en", now)
    return msgspec.json.encode(
        {"at": now, "code": c.code, "sku": c.sku, "text": zh.text, "text_en": en.text}
    )


def _ints(h: dict[bytes, bytes]) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in h.items()}


def compute_stats(
    session_id: str, viewers: int, peak: int, stats: dict[str, int], buyers: int, audience: int
) -> p.Stats:
    units = {k[2:]: v for k, v in stats.items() if k.startswith("u:")}
    gmv = {k[2:]: v for k, v in stats.items() if k.startswith("g:")}
    top = sorted(units, key=lambda s: (-units[s], s))[:TOP_N]
    return p.Stats(
        session_id=session_id,
        viewers=viewers,
        peak=max(peak, viewers),
        orders=stats.get("orders", 0),
        units=session_units(stats),
        gmv=session_gmv(stats),
        conversion=round(buyers / audience, 4) if audience else 0.0,
        top=[p.TopProduct(sku=s, units=units[s], gmv=gmv.get(s, 0)) for s in top],
    )


class _ConsoleRoom:
    """Per-room state of this process's broadcaster loop."""

    def __init__(self) -> None:
        self.history: deque[tuple[int, int]] = deque(maxlen=300)
        self.session_id = ""


class ConsoleOutlet(Protocol):
    """The broadcaster sockets of this process, as the realtime hub holds them (wired
    by the app): which rooms have any, product names, and a send to them."""

    def local_rooms(self) -> list[str]: ...

    def console_rooms(self) -> list[str]: ...

    def product_names(self, room_id: str) -> dict[str, str]: ...

    def to_consoles(self, room_id: str, render: Callable[[p.Lang], str]) -> None: ...


class Broadcasters:
    def __init__(
        self,
        redis: AnyRedis,
        consoles: ConsoleOutlet,
        offers: Offers,
        presence: Presence,
        *,
        interval_s: float = 1.0,
    ) -> None:
        self._redis = redis
        self._consoles = consoles
        self._offers = offers
        self._presence = presence
        self._interval_s = interval_s
        self._rooms: dict[str, _ConsoleRoom] = {}
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except (RedisError, OSError) as exc:
                log.warning("broadcaster loop waiting for redis", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)

    async def tick(self) -> None:
        await self._offers.sweep(self._consoles.local_rooms())
        with_consoles = self._consoles.console_rooms()
        for room_id in self._rooms.keys() - set(with_consoles):
            del self._rooms[room_id]
        for room_id in with_consoles:
            await self._serve_consoles(room_id)

    async def _serve_consoles(self, room_id: str) -> None:
        keys = RoomKeys.of(room_id)
        now = now_ms()
        buckets = [bucket_of(now) - i for i in range(36)]  # the last 6 minutes
        async with self._redis.pipeline(transaction=False) as pipe:
            # One call a statement: redis-py types a pipeline's commands as the client's
            # (awaitables), so chaining them does not type-check.
            pipe.hgetall(keys.room)
            pipe.hgetall(keys.stats)
            pipe.scard(keys.buyers)
            pipe.scard(keys.audience)
            pipe.hgetall(keys.stock)
            pipe.hgetall(keys.stocked)
            pipe.hkeys(keys.offers)
            pipe.hget(RECONCILE, room_id)
            pipe.hkeys(keys.groups)
            pipe.hkeys(keys.polls)
            for b in buckets:
                pipe.hgetall(keys.engagement(b))
            res = await pipe.execute()
        room_h = {k.decode(): v.decode() for k, v in res[0].items()}
        if room_h.get("live") != "1":
            return
        state = self._rooms.setdefault(room_id, _ConsoleRoom())
        session_id = room_h.get("session_id", "")
        if session_id != state.session_id:
            state.session_id = session_id
            state.history.clear()
        viewers, peak = self._presence.totals.get(room_id, (0, int(room_h.get("peak", 0))))
        state.history.append((now, viewers))
        stats = _ints(res[1])
        msg = compute_stats(
            session_id, viewers, int(room_h.get("peak", peak)), stats, int(res[2]), int(res[3])
        )
        if res[7]:
            figures = decode_figures(res[7])
            msg = msgspec.structs.replace(
                msg, reconcile=p.StatsReconcile(delta=figures.delta, alarm=figures.alarm)
            )
        groups = []
        for group_id in res[8]:
            gid = group_id.decode()
            fields = _ints_or_str(await self._redis.hgetall(keys.group(gid)))
            if fields and group_visible(fields, now):
                groups.append(group_from_hash(gid, fields))
        joins = stats.get("group_joins", 0)
        if groups or joins:
            counts = msgspec.structs.replace(group_stats(groups), joins=joins)
            msg = msgspec.structs.replace(msg, groups=counts)
        text = p.encode(msg)
        self._consoles.to_consoles(room_id, lambda lang: text)

        offers = []
        for offer_id in res[6]:
            fields = _ints_or_str(await self._redis.hgetall(keys.offer(offer_id.decode())))
            if fields:
                offers.append(offer_from_hash({**fields, "offer_id": offer_id.decode()}))
        recent: dict[str, int] = {}
        prior: dict[str, int] = {}
        polls = []
        for poll_id in res[9]:
            found = await read_poll(self._redis, room_id, poll_id.decode())
            if found is not None and (found[1] == 0 or now - found[1] <= POLL_HINT_MS):
                polls.append(found[0])
        for i, h in enumerate(res[10:]):
            target = recent if i < 60 // BUCKET_S else prior
            for sku, n in _ints(h).items():
                target[sku] = target.get(sku, 0) + n
        metrics = coaching.RoomMetrics(
            now_ms=now,
            started_at=int(room_h.get("started_at", now)),
            viewers=viewers,
            peak=msg.peak,
            viewer_history=tuple(state.history),
            interactions_60s=recent,
            interactions_baseline={s: n / 5 for s, n in prior.items()},
            last_order_at=stats.get("last_order_at"),
            units_by_sku={k[2:]: v for k, v in stats.items() if k.startswith("u:")},
            stock=_ints(res[4]),
            stocked=_ints(res[5]),
            offers=tuple(offers),
            pinned=room_h.get("pinned") or None,
            names=self._consoles.product_names(room_id),
            groups=tuple(groups),
            polls=tuple(polls),
        )
        for candidate in await claim_hints(self._redis, room_id, coaching.candidates(metrics)):
            log.info("hint", room=room_id, code=candidate.code, sku=candidate.sku)
            self._consoles.to_consoles(room_id, functools.partial(_hint_text, candidate, now))


def _hint_text(candidate: coaching.Candidate, now: int, lang: p.Lang) -> str:
    return p.encode(coaching.render(candidate, lang, now))


def _ints_or_str(h: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {as_text(k): as_text(v) for k, v in h.items()}
