"""What single engine commands cost inside a script, on a fresh embedded engine: each
one run 20,000 times in one EVAL, the wall time divided (propagation to the AOF included).
A rough guide to what a purchase script's lines cost; the figures move with the machine.

    python -m loadtest.script_command_costs
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from liveshop.engine.connections import connect_redis
from liveshop.engine.embedded import EmbeddedEngine

LOOPS = 20_000
ORDER_ID = "'o_0123456789abcdef01.s001'"
BLOB = "string.rep('x', 330)"  # about an order's JSON
V1_ENTRY = ", ".join(
    f"'{f}','{v}'"
    for f, v in [
        ("order_id", "o_0123456789abcdef01.s001"),
        ("room_id", "s001"),
        ("session_id", "ls_abc"),
        ("user_id", "u12345"),
        ("sku", "lychee-500g"),
        ("qty", "1"),
        ("unit_price", "1990"),
        ("offer_id", ""),
        ("pickup_code", "123456"),
        ("status", "accepted"),
        ("created_at", "1767950000000"),
    ]
)
ORDER = (
    "{order_id='o_0123456789abcdef01.s001', room_id='s001', session_id='ls_abc',"
    " user_id='u12345', sku='lychee-500g', qty='1', unit_price='1990', method='pickup',"
    " pickup_code='123456', version='1', created_at='1767950000000',"
    " updated_at='1767950000000', state='accepted'}"
)
BODIES = {
    "HINCRBY": "redis.call('HINCRBY', 'h', 'f', 1)",
    "HSETNX (a pickup code)": f"redis.call('HSETNX', 'codes', tostring(100000 + i), {ORDER_ID})",
    "LPUSH (a buyer's index)": f"redis.call('LPUSH', 'l' .. (i % 1000), {ORDER_ID})",
    "ZADD": f"redis.call('ZADD', 'z' .. (i % 1000), i, {ORDER_ID} .. i)",
    "SET 330 B, new key (an order)": "redis.call('SET', 'order:' .. i, blob)",
    "HSET 330 B, new field": "redis.call('HSET', 'orders', 'o' .. i, blob)",
    "PUBLISH 330 B (a buyer's message)": "redis.call('PUBLISH', 'ch', blob)",
    "XADD 11 fields (a v1 outbox entry)": (
        f"redis.call('XADD', 's1', 'MAXLEN', '100', '*', {V1_ENTRY})"
    ),
    "XADD 5 fields, 330 B (a v1.1 entry)": (
        "redis.call('XADD', 's2', 'MAXLEN', '100', '*', 'kind', 'order', 'sku', 'lychee-500g',"
        " 'sold', '1', 'o', blob, 'e', '{}')"
    ),
    "cjson.encode (an order)": "local _ = cjson.encode(order)",
}


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = EmbeddedEngine(Path(tmp))
        engine.start()
        try:
            redis = connect_redis(engine.url, timeout_s=120)
            for name, body in BODIES.items():
                script = (
                    f"local blob = {BLOB} local order = {ORDER}\n"
                    f"for i = 1, {LOOPS} do {body} end return 1"
                )
                started = time.perf_counter()
                await redis.eval(script, 0)
                took = time.perf_counter() - started
                print(f"{name:38s} {took / LOOPS * 1e6:6.2f} us")
            await redis.aclose()
        finally:
            engine.stop()


if __name__ == "__main__":
    asyncio.run(main())
