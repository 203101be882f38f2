"""What one purchase costs the engine: redis-benchmark driving `inventory_buy.lua` of
the checkout on PYTHONPATH, in a `payment: none` or a `payment: required` room, on a
fresh embedded engine (AOF, appendfsync always: the default durability). Also reports
the engine's own microseconds per script call (INFO commandstats), steadier than the
throughput on a shared machine.

    PYTHONPATH=<checkout> python -m loadtest.purchase_cost --mode none --requests 100000

Prints one JSON line. Run it for two checkouts alternately (BENCHMARKS.md) to compare
them in the same minutes; every buyer and request id is random per call, so with
`required` the limit of 3 unpaid orders per user is never what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from liveshop.commerce.inventory import buy_call
from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import connect_redis
from liveshop.engine.embedded import EmbeddedEngine
from liveshop.engine.scripts import Scripts, source
from loadtest.baselines.raw_lua import benchmark_binary

ROOM, SKU = "bench", "buy-1"


async def measure(mode: str, requests: int, clients: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = EmbeddedEngine(Path(tmp))
        engine.start()
        try:
            redis = connect_redis(engine.url)
            scripts = Scripts(redis)
            await scripts.load_all()
            keys = RoomKeys.of(ROOM)
            await redis.hset(keys.room, mapping={"name": ROOM, "live": "1", "session_id": "ls_b"})
            if mode == "required":
                await redis.hset(keys.room, mapping={"payment": "required", "hold_s": "900"})
            await scripts.inventory_put_product(
                keys=[
                    keys.products,
                    keys.price,
                    keys.stock,
                    keys.stocked,
                    keys.seq,
                    keys.history,
                    f"ls:{{{ROOM}}}:held",
                    f"ls:{{{ROOM}}}:bands",  # the price guard's (an older checkout ignores it)
                ],
                args=[SKU, '{"name":"b"}', 990, 1_000_000_000, keys.channel],
            )
            rand = "__rand_int__"
            members = ""
            if mode == "group":
                sha, key_list, args, members = await _group_join_call(scripts, redis, rand)
            else:
                sha = await redis.script_load(source("inventory_buy"))
                key_list, args = buy_call(
                    ROOM, rand, rand, SKU, 1, "", f"o_{rand}.{ROOM}", rand, 86400
                )
            cmd = [
                benchmark_binary(),
                "-s",
                engine.socket_path,
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
            out = await asyncio.to_thread(
                subprocess.run, cmd, capture_output=True, text=True, timeout=600, check=True
            )
            left = int(await redis.hget(keys.stock, SKU) or 0)
            joined = int(await redis.llen(members)) if members else 0
            # The engine's own time in the script, per call: what the purchase costs it,
            # apart from the client's and the fsync's share.
            evalsha = (await redis.info("commandstats")).get("cmdstat_evalsha", {})
            await redis.aclose()
        finally:
            engine.stop()
    rows = list(csv.reader(io.StringIO(out.stdout)))
    row = dict(zip(rows[0], rows[-1], strict=False))
    return {
        "mode": mode,
        "clients": clients,
        "requests": requests,
        "accepted": joined if mode == "group" else 1_000_000_000 - left,
        "decisions_per_s": float(row["rps"]),
        "engine_us_per_purchase": float(evalsha.get("usec_per_call", "nan")),
        "p50_ms": float(row.get("p50_latency_ms", "nan")),
        "p99_ms": float(row.get("p99_latency_ms", "nan")),
    }


async def _group_join_call(
    scripts: Scripts, redis: Any, rand: str
) -> tuple[str, list[str], list[str | int], str]:
    """A group of half the shelf (threshold 10,000 buyers: it succeeds partway through
    the run, so both an open group's joins and the later ones are measured) and the
    KEYS and ARGV of `groups_join.lua` for a random buyer per call."""
    from liveshop.commerce.groups import Groups
    from liveshop.commerce.order_book import GROUP_FAIL, GROUP_OK, MAX_UNPAID, order_call
    from liveshop.core import protocol as p

    group = await Groups(scripts, idempotency_ttl_s=86400).start(
        ROOM,
        p.GroupStart(
            sku=SKU, price=890, threshold=10_000, duration_s=3600, cap=500_000_000, per_user_limit=1
        ),
    )
    order_id = f"o_{rand}.{ROOM}"
    keys, args = order_call(ROOM)
    sha = await redis.script_load(source("groups_join"))
    return (
        sha,
        [*keys, f"ls:{{{ROOM}}}:order:{order_id}"],
        [
            *args,
            rand,
            group.group_id,
            1,
            order_id,
            rand,
            86400,
            "",
            GROUP_OK,
            GROUP_FAIL,
            MAX_UNPAID,
        ],
        f"ls:{{{ROOM}}}:group:{group.group_id}:orders",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["none", "required", "group"], default="none")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.mode, args.requests, args.clients))))


if __name__ == "__main__":
    main()
