"""The naive peer: the flash sale as a competent developer writes it first. A bare
`websockets` server, one room, tokens checked with liveshop's own JWT module, and per tap
one EVALSHA (naive_offer_buy.lua: liveshop's flash-offer buy semantics) through
redis.asyncio, on a BlockingConnectionPool of 64 like liveshop's (redis-py's default pool
raises "Too many connections" past 100 calls in flight). After each sale every socket
gets `stock` and `offer` at once through websockets' `broadcast()`, the fan-out its docs
recommend: no gate, no coalescing, no batching.

Contract: a buy is decided atomically by the script, on the peer's own embedded engine
with liveshop's default durability (AOF, appendfsync always); an accepted `order_ack` is
sent after its order is in the outbox stream (XADD in the same script); a repeated (user,
request_id) gets the first answer. Room messages go out at most once, numbered (`seq`) in
the order the engine's replies were read, which is not the order of the sales: the
engine answers the calls of one fsync together, and in reverse across connections, so
the last `stock` a viewer gets may not be the lowest. It has no order database:
GET /api/orders reads the outbox stream (XRANGE), GET /api/rooms/s001 the stock hash.

Run: python -m loadtest.baselines.naive_peer --port 8104 --data-dir /tmp/x
     --product flash-1:1990:200   (LIVESHOP_SECRET: the key the viewers' tokens are signed with)
"""

from __future__ import annotations

import asyncio
import http
import os
import secrets
import signal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from liveshop.core import identity
from liveshop.core.errors import TokenError
from liveshop.engine.embedded import EmbeddedEngine
from loadtest.baselines.common import dumps, now_ms, parser, stock_text
from loadtest.viewer import loop_factory

ROOM = "s001"
BUY_LUA = Path(__file__).with_name("naive_offer_buy.lua").read_text()
STOCK, PRICES, OUTBOX = "naive:stock", "naive:prices", "naive:outbox"
IDEMPOTENCY_TTL_S = 86_400


class Peer:
    def __init__(self, redis: Redis, secret: str) -> None:
        self.redis = redis
        self.secret = secret
        self.sockets: set[ServerConnection] = set()
        self.offers: dict[str, dict[str, Any]] = {}
        self.seq = 0
        self.buy_sha = ""

    async def setup(self, products: list[str]) -> None:
        self.buy_sha = await self.redis.script_load(BUY_LUA)
        for product in products:  # sku:price:stock
            sku, price, stock = product.split(":")
            await self.redis.hset(PRICES, sku, price)
            await self.redis.hset(STOCK, sku, stock)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def offer_to_all(self, offer: dict[str, Any]) -> None:
        msg = {"type": "offer", **offer, "seq": self.next_seq(), "ts": now_ms()}
        broadcast(self.sockets, dumps(msg))

    async def handler(self, ws: ServerConnection) -> None:
        user: str | None = None
        role = ""
        try:
            async for raw in ws:
                msg = orjson.loads(raw)
                kind = msg.get("type")
                if kind == "hello":
                    try:
                        claims = identity.verify(self.secret, msg["token"])
                    except (KeyError, TokenError):  # anonymous viewers: not in this subset
                        await ws.send(dumps({"type": "bye", "reason": "forbidden"}))
                        return
                    user, role = claims.sub, claims.role
                    await ws.send(dumps(await self.welcome(user, role)))
                    self.sockets.add(ws)
                elif user is None:
                    await ws.send(dumps({"type": "error", "code": "not_ready", "message": ""}))
                elif kind == "buy":
                    await self.buy(ws, user, msg)
                elif kind == "offer_start" and role == "broadcaster":
                    await self.start_offer(msg)
        except ConnectionClosed:
            pass
        finally:
            self.sockets.discard(ws)

    async def welcome(self, user: str, role: str) -> dict[str, Any]:
        stock = await self.redis.hgetall(STOCK)
        prices = await self.redis.hgetall(PRICES)
        products = [
            {"sku": s, "name": s, "price": int(prices[s]), "stock": int(n)}
            for s, n in stock.items()
        ]
        state = {"live": True, "viewers": len(self.sockets), "products": products}
        state["offers"] = list(self.offers.values())
        return {
            "type": "welcome",
            "room": ROOM,
            "role": role,
            "user": user,
            "seq": self.seq,
            "resumed": False,
            "state": state,
        }

    async def start_offer(self, msg: dict[str, Any]) -> None:
        now = now_ms()
        offer_id = "of_" + secrets.token_hex(4)
        offer = {
            "offer_id": offer_id,
            "sku": msg["sku"],
            "price": int(msg["price"]),
            "qty": int(msg["qty"]),
            "left": int(msg["qty"]),
            "per_user_limit": int(msg["per_user_limit"]),
            "starts_at": now,
            "ends_at": now + int(msg["duration_s"]) * 1000,
            "status": "live",
        }
        fields: dict[FieldT, EncodableT] = {k: v for k, v in offer.items() if k != "offer_id"}
        await self.redis.hset(f"naive:offer:{offer_id}", mapping=fields)
        self.offers[offer_id] = offer
        self.offer_to_all(offer)

    async def buy(self, ws: ServerConnection, user: str, msg: dict[str, Any]) -> None:
        rid, sku, qty = str(msg["request_id"]), str(msg["sku"]), int(msg["qty"])
        offer_id = str(msg.get("offer_id") or "")
        offer_key = f"naive:offer:{offer_id}"
        keys = [STOCK, PRICES, OUTBOX, offer_key, offer_key + ":buyers"]
        keys.append(f"naive:answer:{len(user)}:{user}:{rid}")  # length-prefixed: unforgeable
        order_id = "o_" + secrets.token_urlsafe(9)
        pickup = f"{secrets.randbelow(1_000_000):06d}"
        args: list[str | int] = [user, rid, sku, qty, offer_id, order_id, pickup, IDEMPOTENCY_TTL_S]
        try:
            reply = await self.redis.evalsha(self.buy_sha, len(keys), *keys, *args)
        except RedisError as exc:
            error = {"type": "error", "code": "unavailable", "message": str(exc), "ref": rid}
            await ws.send(dumps(error))
            return
        kind, answer, left, offer_left, status = reply
        ack = orjson.loads(answer)
        await ws.send(dumps({"type": "order_ack", "request_id": rid, **ack}))
        if kind != "new":
            return
        if ack["status"] == "accepted":
            broadcast(self.sockets, stock_text(sku, left, self.next_seq()))
        offer = self.offers.get(offer_id)
        if offer is not None and (ack["status"] == "accepted" or status != offer["status"]):
            if offer_left >= 0:
                offer["left"] = offer_left
            offer["status"] = status
            self.offer_to_all(offer)

    async def http(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/readyz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if url.path == f"/api/rooms/{ROOM}":
            welcome = await self.welcome("", "hq")
            return json_response(connection, welcome["state"])
        if url.path == "/api/orders":
            limit = int(parse_qs(url.query).get("limit", ["10000"])[0])
            entries = await self.redis.xrange(OUTBOX, count=limit)
            orders = [{**(fields or {}), "state": "accepted"} for _, fields in entries or ()]
            return json_response(connection, {"orders": orders})
        if url.path != f"/ws/rooms/{ROOM}":
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        return None  # the websocket handshake goes on


def json_response(connection: ServerConnection, body: Any) -> Response:
    response = connection.respond(http.HTTPStatus.OK, dumps(body))
    response.headers["Content-Type"] = "application/json"
    return response


async def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--product", action="append", default=[], help="sku:price:stock")
    args = ap.parse_args()
    engine = EmbeddedEngine(args.data_dir, durability="strict")
    await asyncio.to_thread(engine.start)
    pool = BlockingConnectionPool.from_url(engine.url, max_connections=64, decode_responses=True)
    redis = Redis.from_pool(pool)
    try:
        peer = Peer(redis, os.environ["LIVESHOP_SECRET"])
        await peer.setup(args.product)
        stop = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
        async with serve(
            peer.handler,
            "127.0.0.1",
            args.port,
            process_request=peer.http,
            compression=None,
            max_size=4096,  # the protocol's frame limit (1009 beyond it)
            ping_interval=20,
            ping_timeout=20,
            backlog=4096,
        ):
            await stop
    finally:
        await redis.aclose()
        await asyncio.to_thread(engine.stop)


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory()) as runner:  # uvloop, as uvicorn runs
        runner.run(main())
