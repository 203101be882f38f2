"""Loads the Lua scripts in liveshop/lua once and calls them by SHA.

Each `<concept>_<op>.lua` is prefixed with `_prelude.lua` (the room-stream `emit`).
redis-py's Script runs EVALSHA and falls back to loading the source on NOSCRIPT, so a
restarted or failed-over engine needs no special handling here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Call = tuple[AsyncScript, Sequence[Any], Sequence[Any]]

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
)


def source(name: str, *, sharded: bool = False) -> str:
    lua = resources.files("liveshop") / "lua"
    prelude = (lua / "_prelude.lua").read_text()
    body = (lua / f"{name}.lua").read_text()
    # Sharded pub/sub keeps a room's messages on the shard that owns its slot.
    return (prelude + "\n" + body).replace("__PUBLISH__", "SPUBLISH" if sharded else "PUBLISH")


async def run_many(redis: Redis | RedisCluster, calls: list[Call]) -> list[Any]:
    """Run script calls (e.g. one per room) in one round trip: a pipeline on a single
    Redis; concurrently on a Cluster, where the rooms live on different shards."""
    if not calls:
        return []
    if isinstance(redis, RedisCluster):
        return list(await asyncio.gather(*(s(keys=k, args=a) for s, k, a in calls)))
    async with redis.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            await script(keys=keys, args=args, client=pipe)
        return list(await pipe.execute())


class Scripts:
    """One registered script per operation; call as `await scripts.inventory_buy(keys, args)`."""

    def __init__(self, redis: Redis | RedisCluster, *, sharded: bool = False) -> None:
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(source(name, sharded=sharded)) for name in NAMES
        }

    def __getattr__(self, name: str) -> AsyncScript:
        try:
            return self._scripts[name]
        except KeyError:
            raise AttributeError(name) from None

    async def load_all(self) -> None:
        """Load every script up front so the first purchase pays no SCRIPT LOAD."""
        for script in self._scripts.values():
            client: Any = script.registered_client
            # On a Cluster redis-py sends SCRIPT LOAD to every primary, so EVALSHA finds
            # the script on whichever shard a room lives.
            script.sha = await client.script_load(script.script)


class ScriptBatcher:
    """Sends the script calls made in one event-loop turn as one pipeline.

    Under a flash sale thousands of purchases arrive together; one round trip and one
    connection for each batch, instead of one per purchase, is what lets the engine's
    speed reach the sockets. The engine still runs each script atomically, in order. A
    caller that stops waiting (a timeout) does not cancel the pipeline: its answer is
    dropped, and a retry with the same request id gets it from the idempotency record.
    On a Cluster calls go out one by one (redis-py routes each to its shard)."""

    def __init__(self, redis: Redis | RedisCluster, *, max_batch: int = 256) -> None:
        self._redis = redis
        self._max = max_batch
        self._pending: list[
            tuple[AsyncScript, Sequence[Any], Sequence[Any], asyncio.Future[Any]]
        ] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_answer = 0.0  # loop time of the last pipeline the engine answered

    def answered_within(self, seconds: float) -> bool:
        """The engine answered a batch recently: it is alive, we are merely busy."""
        return asyncio.get_running_loop().time() - self.last_answer < seconds

    async def call(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        if isinstance(self._redis, RedisCluster):
            return await script(keys=keys, args=args)
        return await self._enqueue(script, keys, args)

    async def get(self, key: str) -> Any:
        """GET, batched like the scripts (thousands of sold-out taps arrive together)."""
        if isinstance(self._redis, RedisCluster):
            return await self._redis.get(key)
        return await self._enqueue(None, [key], [])

    async def _enqueue(
        self, script: AsyncScript | None, keys: Sequence[Any], args: Sequence[Any]
    ) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((script, keys, args, future))  # type: ignore[arg-type]
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)  # after every callback already due in this turn
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        for i in range(0, len(batch), self._max):
            task = asyncio.create_task(self._send(batch[i : i + self._max]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(
        self, batch: list[tuple[AsyncScript, Sequence[Any], Sequence[Any], asyncio.Future[Any]]]
    ) -> None:
        try:
            results = await self._pipeline(batch)
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:  # the engine restarted or flushed its script cache: load, redo those
                for script in {id(batch[i][0]): batch[i][0] for i in missing}.values():
                    script.sha = await self._redis.script_load(script.script)
                redo = await self._pipeline([batch[i] for i in missing])
                for i, r in zip(missing, redo, strict=True):
                    results[i] = r
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

    async def _pipeline(
        self, batch: list[tuple[AsyncScript, Sequence[Any], Sequence[Any], asyncio.Future[Any]]]
    ) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for script, keys, args, _ in batch:
                if script is None:
                    pipe.get(keys[0])
                else:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
            results = list(await pipe.execute(raise_on_error=False))
        self.last_answer = asyncio.get_running_loop().time()
        return results
