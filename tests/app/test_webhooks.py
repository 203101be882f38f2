"""Webhooks against a real HTTP receiver the test runs on 127.0.0.1: `live.started` with
the reserved users, `order.changed` for a purchase, `live.ended`, each signed and
delivered at least once — also by a receiver that fails its first 3 requests, and by one
that is down while the server restarts (the events wait in the database)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from liveshop.commerce.webhooks import BATCH, KEEP_MS, SIGNATURE_HEADER, Webhooks, signature
from liveshop.engine.database import open_database
from tests.conftest import ROOM, seed_room
from tests.databases import database_for_test
from tests.support import UNIT, Client, RunningServer, eventually, settings_for, token

SECRET = "webhook-secret-for-tests-0123456789"


class Receiver:
    """A minimal HTTP/1.1 server: records every POST; answers 500 to the first
    `fail_first` requests, then 200."""

    def __init__(self, port: int, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.port = port
        self.fail_first = fail_first
        self.delay_s = delay_s  # before each answer: a slow receiver
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.in_flight = self.most_in_flight = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines if h)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            await asyncio.sleep(self.delay_s)
            self.in_flight -= 1
            status = 500 if len(self.requests) < self.fail_first else 200
            self.requests.append((headers, body, status))
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        finally:
            writer.close()

    def events(self) -> dict[str, dict[str, Any]]:
        """Delivered events (answered 200), by event_id."""
        return {json.loads(b)["event_id"]: json.loads(b) for _h, b, s in self.requests if s == 200}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webhook_settings(redis_url: str, data: Path, port: int, database_url: str) -> Any:
    return settings_for(
        redis_url,
        data,
        database_url=database_url,
        webhook_url=f"http://127.0.0.1:{port}/hooks",
        webhook_secret=SECRET,
        webhook_retry_ms=100,
    )


async def test_events_are_signed_and_retried_until_delivered(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    receiver = Receiver(free_port(), fail_first=3)
    await receiver.start()
    async with database_for_test(tmp_path) as url:
        await events_flow(receiver, webhook_settings(redis_url, tmp_path, receiver.port, url))


async def events_flow(receiver: Receiver, settings: Any) -> None:
    srv = await RunningServer(settings).start()
    try:
        services = srv.runtime.services
        assert services is not None
        await seed_room(services.rooms, services.inventory, live=False)
        async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
            reserved = await http.post(
                f"/api/rooms/{ROOM}/reservations",
                headers={"Authorization": f"Bearer {token(user='fan1')}"},
            )
            assert reserved.json() == {"count": 1, "reserved": True}
        host = await Client.connect(srv.ws_url(ROOM))
        await host.hello(token("broadcaster", "host1", ROOM))
        buyer = await Client.connect(srv.ws_url(ROOM))
        await buyer.hello(token(user="b1"))
        await host.send({"type": "go_live", "title": "今晚荔枝"})
        await buyer.wait_for(lambda m: m["type"] == "live" and m["live"])
        ack = await buyer.request(
            {"type": "buy", "request_id": "r1", "sku": "lychee-500g", "qty": 1}, "order_ack"
        )
        assert ack["status"] == "accepted"
        await host.send({"type": "end_live"})
        await buyer.wait_for(lambda m: m["type"] == "live" and not m["live"])

        def kinds() -> set[str]:
            return {e["event"] for e in receiver.events().values()}

        assert await eventually(
            lambda: {"live.started", "order.changed", "live.ended"} <= kinds(), timeout=20.0
        )
        assert [s for _h, _b, s in receiver.requests[:3]] == [500, 500, 500]
        for headers, body, _status in receiver.requests:
            assert headers[SIGNATURE_HEADER.lower()] == signature(SECRET.encode(), body)
        events = receiver.events()
        started = next(e for e in events.values() if e["event"] == "live.started")
        assert started["room"] == ROOM and started["data"]["reserved"] == ["fan1"]
        moves = [e for e in events.values() if e["event"] == "order.changed"]
        assert {m["data"]["order_id"] for m in moves} == {ack["order_id"]}
        await host.close()
        await buyer.close()
    finally:
        await srv.stop()
        await receiver.stop()


async def test_events_wait_for_a_receiver_down_across_a_restart(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    receiver = Receiver(port)  # not started: down
    async with database_for_test(tmp_path) as url:
        await across_a_restart(receiver, webhook_settings(redis_url, tmp_path, port, url))


async def across_a_restart(receiver: Receiver, settings: Any) -> None:
    srv = await RunningServer(settings).start()
    try:
        services = srv.runtime.services
        assert services is not None
        await seed_room(services.rooms, services.inventory, live=False)
        host = await Client.connect(srv.ws_url(ROOM))
        await host.hello(token("broadcaster", "host1", ROOM))
        start = len(host.received)
        await host.send({"type": "go_live"})
        await host.wait_for(lambda m: m["type"] == "live", start=start)
        await host.close()
        await asyncio.sleep(0.5)  # a failed attempt or two, with the receiver down
    finally:
        await srv.stop()
    await receiver.start()
    again = await RunningServer(settings).start()
    try:
        assert await eventually(
            lambda: any(e["event"] == "live.started" for e in receiver.events().values()),
            timeout=20.0,
        )
    finally:
        await again.stop()
        await receiver.stop()


async def test_a_group_that_stops_taking_joins_sends_group_closed_once(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    """A room group that succeeds and fills up, one the broadcaster cancels and an HQ deal
    across two rooms that HQ cancels: each is one `group.closed` event, with the group as
    it closed and how many members it had (the room group's through the outbox, the
    deal's from the relay)."""
    receiver = Receiver(free_port())
    await receiver.start()
    async with database_for_test(tmp_path) as url:
        srv = await RunningServer(webhook_settings(redis_url, tmp_path, receiver.port, url)).start()
        clients: list[Client] = []
        try:
            services = srv.runtime.services
            assert services is not None
            await seed_room(services.rooms, services.inventory)
            await seed_room(services.rooms, services.inventory, "s002")
            host = await Client.connect(srv.ws_url(ROOM))
            await host.hello(token("broadcaster", "host1", ROOM))
            buyers = [await Client.connect(srv.ws_url(ROOM)) for _ in range(2)]
            clients += [host, *buyers]
            for n, b in enumerate(buyers):
                await b.hello(token(user=f"b{n}"))
            group = {"type": "group_start", "sku": "lychee-500g", "price": 1490}
            group |= {"duration_s": 600, "per_user_limit": 1}
            full = await host.request({**group, "threshold": 2, "cap": 2}, "group")
            short = await host.request({**group, "threshold": 3, "cap": 10}, "group")
            for n, b in enumerate(buyers):
                join = {"type": "group_join", "group_id": full["group_id"], "qty": 1}
                ack = await b.request({**join, "request_id": f"f{n}"}, "order_ack")
                assert ack["status"] == "accepted", ack
            join = {"type": "group_join", "group_id": short["group_id"], "qty": 1}
            ack = await buyers[0].request({**join, "request_id": "s0"}, "order_ack")
            assert ack["status"] == "accepted", ack
            await host.send({"type": "group_cancel", "group_id": short["group_id"]})
            hq = {"Authorization": f"Bearer {token('hq', user='hq')}"}
            deal_in = {"rooms": [ROOM, "s002"], "sku": "lychee-500g", "price": 1290}
            deal_in |= {"threshold": 2, "duration_s": 600, "stock": 100, "per_user_limit": 1}
            async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
                made = await http.post("/api/groups", json=deal_in, headers=hq)
                deal = made.json()["group"]
                join = {"type": "group_join", "group_id": deal["group_id"], "qty": 1}
                ack = await buyers[1].request({**join, "request_id": "d1"}, "order_ack")
                assert ack["status"] == "accepted", ack
                cancelled = await http.post(f"/api/groups/{deal['group_id']}/cancel", headers=hq)
                assert cancelled.status_code == 200, cancelled.text

            def closed() -> dict[str, dict[str, Any]]:
                events = receiver.events().values()
                return {e["data"]["group_id"]: e for e in events if e["event"] == "group.closed"}

            assert await eventually(lambda: len(closed()) == 3, timeout=20.0)
            await asyncio.sleep(3 * 0.5)  # more relay passes and persister rounds: no repeat
        finally:
            for c in clients:
                await c.close()
            await srv.stop()
            await receiver.stop()
    by_id = closed()
    got = {
        gid: (e["room"], e["data"]["status"], e["data"]["value"], e["data"]["members"])
        for gid, e in by_id.items()
    }
    assert got == {
        full["group_id"]: (ROOM, "succeeded", 2, 2),
        short["group_id"]: (ROOM, "cancelled", 1, 1),
        deal["group_id"]: ("", "cancelled", 1, 1),
    }
    assert by_id[deal["group_id"]]["data"]["rooms"] == [ROOM, "s002"]
    for e in by_id.values():
        assert e["event_id"] == f"group.closed:{e['room']}:{e['data']['group_id']}"
        assert e["data"]["closed_at"] == e["at"]
        assert "type" not in e["data"]  # the group's fields, the same for a room and a deal
    posted = [json.loads(b)["event_id"] for _h, b, _s in receiver.requests]
    assert sorted(i for i in posted if i.startswith("group.closed")) == sorted(
        e["event_id"] for e in by_id.values()
    )


async def test_a_slow_receiver_gets_events_side_by_side_and_old_rows_are_pruned(
    tmp_path: Path,
) -> None:
    """Events go out several at a time (one slow answer does not hold the rest back), all
    delivered once; rows delivered or given up a week ago leave the table, newer stay."""
    receiver = Receiver(free_port(), delay_s=0.2)
    await receiver.start()
    async with database_for_test(tmp_path) as url:
        db = await open_database(url)
        try:
            hooks = Webhooks(db, f"http://127.0.0.1:{receiver.port}/h", SECRET)
            await hooks.init_schema()
            await hooks.enqueue([(f"e{i}", "order.changed", ROOM, i, {}) for i in range(20)])
            async with httpx.AsyncClient(timeout=5.0) as client:
                assert await hooks.deliver_due(client) == (20, 20)
                assert await hooks.deliver_due(client) == (0, 0)
            assert sorted(receiver.events()) == sorted(f"e{i}" for i in range(20))
            assert len(receiver.requests) == 20 and receiver.most_in_flight > 1
            now = 10 * KEEP_MS
            await hooks.enqueue([("stuck", "order.changed", ROOM, 0, {})])
            await db.execute(
                "UPDATE webhook_outbox SET delivered_at = $1, created_at = $1 "
                "WHERE event_id IN ('e0', 'e1')",
                (now - KEEP_MS - 1,),
            )
            await db.execute(
                "UPDATE webhook_outbox SET created_at = $1 WHERE event_id = 'stuck'",
                (now - KEEP_MS - 25 * 3600_000,),
            )
            await hooks.prune(now)
            left = {str(r[0]) for r in await db.fetch("SELECT event_id FROM webhook_outbox")}
            assert left == {f"e{i}" for i in range(2, 20)}
        finally:
            await db.close()
            await receiver.stop()
    assert BATCH >= 20  # one batch above
