"""How long the sweep takes to expire holds that fell due together: `--holds` unpaid
orders with pay_by in the same second on a fresh embedded engine (default durability),
then one process's `OrderBook.sweep` until none is due.

    python -m loadtest.sweep_cost --holds 10000

Prints one JSON line: the sweep's wall time, the holds expired, and the check that
every unit came back (stock, held and sold as before the sale).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import cast

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.order_book import OrderBook, QrSigner
from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import connect_redis
from liveshop.engine.embedded import EmbeddedEngine
from liveshop.engine.scripts import Scripts

ROOM, SKU = "bench", "buy-1"


async def measure(holds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = EmbeddedEngine(Path(tmp))
        engine.start()
        try:
            redis = connect_redis(engine.url, timeout_s=30)
            scripts = Scripts(redis)
            await scripts.load_all()
            book = OrderBook(scripts, redis, QrSigner("bench"))
            inventory = Inventory(redis, scripts, idempotency_ttl_s=3600, qr=book.qr)
            keys = RoomKeys.of(ROOM)
            await redis.hset(
                keys.room,
                mapping={"live": "1", "session_id": "ls_b", "payment": "required", "hold_s": "2"},
            )
            await inventory.put_product(ROOM, SKU, name=SKU, price=990, stock=holds)
            for start in range(0, holds, 1000):
                await asyncio.gather(
                    *(
                        inventory.buy(ROOM, f"u{n}", "r", SKU, 1)
                        for n in range(start, min(holds, start + 1000))
                    )
                )
            held = (await inventory.ledger(ROOM))[SKU]
            due = cast(
                "list[tuple[bytes, float]]", await redis.zrange(keys.due, -1, -1, withscores=True)
            )
            latest = max(float(s) for _, s in due)
            await asyncio.sleep(max(0.0, latest / 1000 - time.time()) + 0.05)
            started = time.perf_counter()
            moved = await book.sweep([ROOM])
            took = time.perf_counter() - started
            after = (await inventory.ledger(ROOM))[SKU]
            await inventory.aclose()
            await redis.aclose()
        finally:
            engine.stop()
    return {
        "holds": holds,
        "held_before": held[1],
        "expired": moved,
        "sweep_ms": round(took * 1000, 1),
        "us_per_hold": round(took / max(moved, 1) * 1e6, 1),
        "units_back": after == (holds, 0, 0, holds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holds", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.holds))))


if __name__ == "__main__":
    main()
