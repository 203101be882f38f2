"""Loads the Lua scripts in liveshop/lua once and calls them by SHA.

Each `<concept>_<op>.lua` is prefixed with `_prelude.lua` (the room-stream `emit`), and
those that create or move orders with `_orders.lua` too.
A `Script` is ours, not redis-py's: its SHA is the SHA1 of its source (what SCRIPT LOAD
returns), it runs with the documented `evalsha` command and, when the engine answers
NOSCRIPT (restarted, failed over, or its cache flushed), loads the source with
`script_load` and runs it again; the purchase batcher does the same (`ScriptBatcher.call`).
So callers need no special handling, and nothing here reads or writes redis-py internals.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from liveshop.engine.connections import AnyRedis, engine_url
from liveshop.engine.link import EngineLink

Call = tuple["Script", Sequence[Any], Sequence[Any]]

NAMES = (
    "inventory_buy",
    "inventory_restock",
    "inventory_put_product",
    "rooms_snapshot",
    "rooms_set_live",
    "rooms_pin",
    "rooms_emit",
    "presence_report",
    "offers_start",
    "offers_close",
    "orders_reconcile",
    "orders_move",
    "orders_sweep",
    "orders_pay",
    "orders_verify",
    "orders_refund_state",
    "orders_delivery",
    "orders_get",
    "groups_start",
    "groups_join",
    "groups_cancel",
    "chain_start",
    "chain_join",
    "chain_end",
    "chain_cursor",
    "chain_count",
    "orders_member",
    "bands_put",
    "packs_apply",
    "packs_fire",
    "packs_withdraw",
    "league_row",
    "joint_route",
    "joint_stock",
    "moderation_act",
    "moderation_chat",
    "polls_start",
    "polls_vote",
    "polls_tick",
    "draws_start",
    "draws_enter",
    "draws_tick",
    "draws_finish",
)
# Scripts that create or move orders get _orders.lua's helpers too.
ORDER_SCRIPTS = frozenset(n for n in NAMES if n.startswith(("orders_", "groups_"))) - {
    "orders_reconcile"
} | {"inventory_buy", "packs_fire"}
# ... and _groups.lua's: any move of a member's order may change its group.
GROUP_SCRIPTS = ORDER_SCRIPTS
# A cross-store deal's scripts run on the deal's own slot, with _chain.lua's helpers.
CHAIN_SCRIPTS = frozenset(n for n in NAMES if n.startswith("chain_"))


def source(name: str, *, sharded: bool = False) -> str:
    lua = resources.files("liveshop.engine") / "lua"
    prelude = (lua / "_prelude.lua").read_text()
    if name in ORDER_SCRIPTS:
        prelude += "\n" + (lua / "_orders.lua").read_text()
    if name in GROUP_SCRIPTS:
        prelude += "\n" + (lua / "_groups.lua").read_text()
    if name in CHAIN_SCRIPTS:
        prelude += "\n" + (lua / "_chain.lua").read_text()
    body = (lua / f"{name}.lua").read_text()
    # Sharded pub/sub keeps a room's messages on the shard that owns its slot.
    return (prelude + "\n" + body).replace("__PUBLISH__", "SPUBLISH" if sharded else "PUBLISH")


class Script:
    """One Lua script: `await script(keys=..., args=...)` runs it with EVALSHA, loading
    it first if the engine does not know it. The engine runs a script atomically, and a
    NOSCRIPT reply means it did not run, so running it again after the load is safe."""

    def __init__(self, redis: AnyRedis, name: str, text: str) -> None:
        self.name = name
        self.source = text
        # What SCRIPT LOAD answers: the engine names a script by the SHA1 of its text.
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        self._redis = redis
        self._loading: asyncio.Future[None] | None = None

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        try:
            return await self._redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.load()
            return await self._redis.evalsha(self.sha, len(keys), *keys, *args)

    async def load(self) -> None:
        """SCRIPT LOAD, once however many callers met NOSCRIPT at the same time. On a
        Cluster redis-py sends SCRIPT LOAD to every primary, so EVALSHA finds the script
        on whichever shard a room lives."""
        if self._loading is None or self._loading.done():
            self._loading = asyncio.ensure_future(self._load())
        await asyncio.shield(self._loading)

    async def _load(self) -> None:
        sha = await self._redis.script_load(self.source)
        if sha != self.sha:  # would mean EVALSHA runs something else: never go on
            raise RedisError(f"script {self.name}: the engine named it {sha}, not {self.sha}")


async def run_many(redis: AnyRedis, calls: list[Call]) -> list[Any]:
    """Run script calls (e.g. one per room, independent of each other) in one round
    trip: a pipeline on a single Redis; concurrently on a Cluster, where the rooms live
    on different shards. A call the engine answered NOSCRIPT did not run: it runs again
    on its own after its script is loaded."""
    if not calls:
        return []
    if isinstance(redis, RedisCluster):
        return list(await asyncio.gather(*(s(keys=k, args=a) for s, k, a in calls)))
    pipe: Pipeline
    async with redis.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        results = list(await pipe.execute(raise_on_error=False))
    for i, ((script, keys, args), result) in enumerate(zip(calls, results, strict=True)):
        if isinstance(result, NoScriptError):
            results[i] = await script(keys=keys, args=args)
        elif isinstance(result, Exception):
            raise result
    return results


class Scripts:
    """One script per operation; call as `await scripts.inventory_buy(keys, args)`."""

    def __init__(self, redis: AnyRedis, *, sharded: bool = False) -> None:
        self._scripts: dict[str, Script] = {
            name: Script(redis, name, source(name, sharded=sharded)) for name in NAMES
        }

    def __getattr__(self, name: str) -> Script:
        try:
            return self._scripts[name]
        except KeyError:
            raise AttributeError(name) from None

    async def load_all(self) -> None:
        """Load every script up front so the first purchase pays no SCRIPT LOAD."""
        for script in self._scripts.values():
            await script.load()


Entry = tuple[Script | None, Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


async def call_batched(
    batcher: ScriptBatcher | None, script: Script, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    """A script call through the purchases' batcher when there is one, else on its own."""
    if batcher is not None:
        return await batcher.call(script, keys, args)
    return await script(keys=keys, args=args)


class ScriptBatcher:
    """Sends the script calls made in one event-loop turn together.

    Under a flash sale thousands of purchases arrive together; one write for each
    batch, instead of a round trip per purchase, is what lets the engine's speed reach
    the sockets. The engine still runs each script atomically, in order. Batches go over
    one pipelined `EngineLink` (replies resolve callers in the socket callback), or
    through a redis-py pipeline where the link cannot be used (TLS); on a Cluster calls
    go out one by one (redis-py routes each to its shard).

    Time limits are kept per batch, not per call (thousands of per-call timers cost a
    flash sale a third of its CPU): a batch the engine has not answered after
    `timeout_s` fails its callers with TimeoutError, unless the engine answered
    meanwhile or this process's loop is what lagged (then up to 10x as long). A failed
    caller does not cancel the purchase: its answer is dropped, and a retry with the
    same request id gets it from the idempotency record."""

    def __init__(
        self,
        redis: Redis | RedisCluster,
        *,
        timeout_s: float = 1.0,
        max_batch: int = 256,
        direct: bool = True,
    ) -> None:
        self._redis = redis
        # RedisCluster's isinstance goes through typing.Protocol machinery: ask once
        self._cluster = isinstance(redis, RedisCluster)
        url = engine_url(redis) if direct else None
        self._link = EngineLink.for_url(url, connect_timeout_s=timeout_s) if url else None
        self._timeout = timeout_s
        self._max = max_batch
        self._pending: list[Entry] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.last_answer = 0.0  # loop time of the last answer seen through redis-py
        self.last_flush = 0.0  # loop time of the last batch sent

    async def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        if self._cluster:
            return await self._single(script(keys=keys, args=args))
        try:
            return await self._enqueue(script, keys, args)
        except NoScriptError:
            # The engine restarted or flushed its script cache; the script did not run.
            await script.load()
            return await self._enqueue(script, keys, args)

    def set_if_absent(self, key: str, value: bytes, ttl_s: int) -> Awaitable[bytes | None]:
        """`SET key value NX GET EX ttl`: store unless the key exists; the value that
        was there, if any. Batched like the scripts (thousands of sold-out taps arrive
        together); returns a future, not a coroutine, to spare each tap a task step."""
        if self._cluster:
            return self._single(self._redis.set(key, value, nx=True, get=True, ex=ttl_s))
        return self._enqueue(None, (key,), (value, ttl_s))

    async def aclose(self) -> None:
        if self._link is not None:
            await self._link.aclose()

    def _enqueue(
        self, script: Script | None, keys: Sequence[Any], args: Sequence[Any]
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((script, keys, args, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)  # after every callback already due in this turn
        return future

    async def _single(self, call: Awaitable[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(task: asyncio.Task[Any]) -> None:
            if task.cancelled() or future.done():
                return
            exc = task.exception()
            if exc is None:
                self.last_answer = loop.time()
                future.set_result(task.result())
            else:
                future.set_exception(exc)

        self._spawn(call).add_done_callback(settle)
        self._watch([future])
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        self.last_flush = asyncio.get_running_loop().time()
        self._watch([entry[3] for entry in batch])
        if self._link is not None:
            link = self._link.ready()
            if link is not None:
                link.send([_command(entry) for entry in batch], [entry[3] for entry in batch])
            else:
                self._spawn(self._send_when_connected(batch))
            return
        for i in range(0, len(batch), self._max):
            self._spawn(self._send(batch[i : i + self._max]))

    def _spawn(self, call: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(call)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _watch(self, futures: list[asyncio.Future[Any]]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_at(started + self._timeout, self._check, futures, started, started)

    def _check(self, futures: list[asyncio.Future[Any]], started: float, armed: float) -> None:
        if all(future.done() for future in futures):
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        # A check that runs late means this process's loop is what is slow (its answer
        # may be waiting in a socket buffer); an engine that answered lately is alive.
        late = now - armed - self._timeout > self._timeout / 4
        last = max(self.last_answer, self._link.last_reply if self._link else 0.0)
        alive = now - last < self._timeout
        if (late or alive) and now - started < 10 * self._timeout:
            loop.call_at(now + self._timeout, self._check, futures, started, now)
            return
        exc = TimeoutError(f"the engine did not answer within {now - started:.1f} s")
        for future in futures:
            if not future.done():
                future.set_exception(exc)
        if self._link is not None:
            self._link.abort()  # a hung connection: the next batch connects afresh

    async def _send_when_connected(self, batch: list[Entry]) -> None:
        assert self._link is not None
        try:
            link = await self._link.connect()
        except (RedisError, OSError) as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        link.send([_command(entry) for entry in batch], [entry[3] for entry in batch])

    async def _send(self, batch: list[Entry]) -> None:
        """The redis-py path (TLS): one pipeline per batch."""
        try:
            results = await self._pipeline(batch)
        except BaseException as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue  # the caller gave up waiting
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _pipeline(self, batch: list[Entry]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for script, keys, args, _ in batch:
                if script is None:
                    pipe.set(keys[0], args[0], nx=True, get=True, ex=args[1])
                else:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
            results = list(await pipe.execute(raise_on_error=False))
        self.last_answer = asyncio.get_running_loop().time()
        return results


def _command(entry: Entry) -> tuple[Any, ...]:
    script, keys, args, _ = entry
    if script is None:  # set_if_absent
        return ("SET", keys[0], args[0], "NX", "GET", "EX", args[1])
    return ("EVALSHA", script.sha, len(keys), *keys, *args)
