"""Raw Lua: liveshop's own purchase script (`liveshop/engine/lua/inventory_buy.lua`, keys and
args built exactly as `Inventory.buy` builds them) driven straight at a fresh embedded
engine with the server's durability, without sockets, rooms or fan-out.

Two drivers: `redis-benchmark` (C, many connections: the engine's ceiling) and one
Python process with redis.asyncio through `liveshop.commerce.inventory.Inventory` (the ceiling
of one Python process, which is what one liveshop server is).
"""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from liveshop.commerce.inventory import Inventory, buy_call
from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import connect_redis
from liveshop.engine.embedded import EmbeddedEngine
from liveshop.engine.scripts import Scripts, source

ROOM, SKU = "bench", "buy-1"


async def _prepare(url: str) -> Inventory:
    redis = connect_redis(url)
    scripts = Scripts(redis)
    await scripts.load_all()
    # direct_link=False: this baseline is redis.asyncio's own pipeline, as the issue names
    inventory = Inventory(redis, scripts, idempotency_ttl_s=86_400, direct_link=False)
    keys = RoomKeys.of(ROOM)
    await redis.hset(keys.room, mapping={"name": "bench", "live": "1", "session_id": "ls_bench"})
    await inventory.put_product(ROOM, SKU, name=SKU, price=990, stock=1_000_000_000)
    return inventory


async def python_driver(url: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """`concurrency` tasks, each with one `Inventory.buy` in flight, for `seconds`."""
    inventory = await _prepare(url)
    redis = inventory._redis  # the baseline closes what it opened
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    lat: list[float] = []
    accepted = [0]

    async def task(i: int) -> None:
        n = 0
        while loop.time() < end:
            n += 1
            t0 = time.perf_counter()
            outcome = await inventory.buy(ROOM, f"u{i}", f"r{i}-{n}", SKU, 1)
            lat.append((time.perf_counter() - t0) * 1000)
            accepted[0] += outcome.accepted

    t0 = loop.time()
    await asyncio.gather(*(task(i) for i in range(concurrency)))
    wall = loop.time() - t0
    await redis.aclose()
    lat.sort()
    return {
        "driver": "redis.asyncio",
        "concurrency": concurrency,
        "decisions": len(lat),
        "accepted": accepted[0],
        "seconds": round(wall, 2),
        "decisions_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(lat[len(lat) // 2], 3),
        "p99_ms": round(lat[int(len(lat) * 0.99)], 3),
    }


def benchmark_command(socket_path: str, sha: str, clients: int, requests: int) -> list[str]:
    rand = "__rand_int__"  # redis-benchmark puts a random number here per call
    key_list, args = buy_call(ROOM, "bench-user", rand, SKU, 1, "", f"o_{rand}.{ROOM}", rand, 86400)
    return [
        benchmark_binary(),
        "-s",
        socket_path,
        "-c",
        str(clients),
        "-n",
        str(requests),
        "-r",
        "1000000000",
        "--csv",
        "EVALSHA",
        sha,
        str(len(key_list)),
        *key_list,
        *map(str, args),
    ]


def benchmark_binary() -> str:
    for name in ("valkey-benchmark", "redis-benchmark"):
        if path := shutil.which(name):
            return path
    raise FileNotFoundError("neither valkey-benchmark nor redis-benchmark is installed")


async def benchmark_driver(engine: EmbeddedEngine, clients: int, requests: int) -> dict[str, Any]:
    inventory = await _prepare(engine.url)
    redis = inventory._redis
    sha = await redis.script_load(source("inventory_buy"))
    cmd = benchmark_command(engine.socket_path, sha, clients, requests)
    t0 = time.monotonic()
    out = await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, timeout=300, check=True
    )
    wall = time.monotonic() - t0
    stock = int(await redis.hget(RoomKeys.of(ROOM).stock, SKU) or 0)
    await redis.aclose()
    rows = list(csv.reader(io.StringIO(out.stdout)))
    header, values = rows[0], rows[-1]
    row = dict(zip(header, values, strict=False))
    return {
        "driver": Path(cmd[0]).name,
        "clients": clients,
        "decisions": requests,
        "accepted": 1_000_000_000 - stock,
        "seconds": round(wall, 2),
        "decisions_per_s": float(row["rps"]),
        "p50_ms": float(row.get("p50_latency_ms", "nan")),
        "p99_ms": float(row.get("p99_latency_ms", "nan")),
    }


async def run(
    method: str,
    data_dir: Path,
    *,
    seconds: float = 8.0,
    concurrency: int = 64,
    requests: int = 100_000,
    durability: str = "strict",
) -> dict[str, Any]:
    """method: `lua` (Python driver) or `lua-bench` (redis-benchmark)."""
    engine = EmbeddedEngine(data_dir, durability=durability)
    await asyncio.to_thread(engine.start)
    try:
        if method == "lua":
            return await python_driver(engine.url, seconds, concurrency)
        return await benchmark_driver(engine, concurrency, requests)
    finally:
        await asyncio.to_thread(engine.stop)
        await asyncio.to_thread(shutil.rmtree, data_dir, True)
