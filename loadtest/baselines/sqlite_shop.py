"""The naive shop: a bare `websockets` server that decides each purchase in SQLite with
`UPDATE stock SET left = left - ? WHERE sku = ? AND left >= ?`, inserts the order and
commits, on the event loop, as a first version would. Same durability as liveshop's
default: WAL with synchronous=FULL (an fsync per commit) against AOF `appendfsync always`.

Run: python -m loadtest.baselines.sqlite_shop --port 8103 --data-dir /tmp/x
"""

from __future__ import annotations

import asyncio
import http
import secrets
import signal
import sqlite3
from pathlib import Path

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from loadtest.baselines.common import dumps, now_ms, parser, welcome
from loadtest.viewer import loop_factory

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, price INTEGER NOT NULL,
                                  left INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
    request_id TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL,
    unit_price INTEGER NOT NULL, created_at INTEGER NOT NULL);
"""


class Shop:
    def __init__(self, path: Path, stock: int) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.db.execute("INSERT OR REPLACE INTO stock VALUES ('buy-1', 990, ?)", (stock,))

    def buy(self, user: str, request_id: str, sku: str, qty: int) -> dict[str, object]:
        ack: dict[str, object] = {
            "type": "order_ack",
            "request_id": request_id,
            "sku": sku,
            "qty": qty,
        }
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute(
                "UPDATE stock SET left = left - ? WHERE sku = ? AND left >= ?", (qty, sku, qty)
            )
            if cur.rowcount != 1:
                db.execute("ROLLBACK")
                return {**ack, "status": "rejected", "reason": "sold_out"}
            price = db.execute("SELECT price FROM stock WHERE sku = ?", (sku,)).fetchone()[0]
            order_id = "o_" + secrets.token_urlsafe(12)
            db.execute(
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)",
                (order_id, user, request_id, sku, qty, price, now_ms()),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return {
            **ack,
            "status": "accepted",
            "order_id": order_id,
            "pickup_code": f"{secrets.randbelow(1_000_000):06d}",
            "unit_price": price,
        }

    async def handler(self, ws: ServerConnection) -> None:
        user = f"anon-{id(ws)}"
        try:
            async for raw in ws:
                msg = orjson.loads(raw)
                kind = msg.get("type")
                if kind == "hello":
                    await ws.send(dumps(welcome("s001", 0, {"buy-1": 0}, 0)))
                elif kind == "buy":
                    ack = self.buy(user, msg["request_id"], msg["sku"], msg["qty"])
                    await ws.send(dumps(ack))
        except Exception:  # a viewer that goes away mid-message is not our problem here
            pass


def ready(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/readyz":
        return connection.respond(http.HTTPStatus.OK, "ok\n")
    return None


async def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--stock", type=int, default=10_000_000)
    args = ap.parse_args()
    shop = Shop(Path(args.data_dir) / "shop.db", args.stock)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        shop.handler,
        "127.0.0.1",
        args.port,
        process_request=ready,
        compression=None,
        max_size=64 * 1024,
        backlog=4096,
    ):
        await stop
    shop.db.close()


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory()) as runner:  # uvloop, as uvicorn runs
        runner.run(main())
