"""Baselines measured in the same run as liveshop, under the same load.

- `raw_broadcast`: a bare `websockets` server that fans room messages out with
  `broadcast()`: the ceiling of fan-out in Python on this machine.
- `socketio_server`: python-socketio (ASGI on uvicorn, Redis manager): what a team would
  pick instead for fan-out.
- `sqlite_shop`: a naive shop that decides a purchase with `UPDATE … WHERE left >= ?` in
  SQLite: what a team would write instead for purchases.
- `naive_peer`: a bare `websockets` server that sells a flash offer with one EVALSHA per
  tap through redis.asyncio and broadcasts stock after each sale, no gate, no coalescing:
  what a team would write instead for the flash sale.
- `raw_lua`: liveshop's own purchase script driven straight at the engine, from
  `redis-benchmark` and from one Python process: the ceiling of the decision itself.

The servers speak the subset of room protocol v1 their benchmark needs (hello →
welcome, restock → stock to everyone, buy → order_ack; the naive peer also offer_start →
offer), so the same client drives every variant.
"""
