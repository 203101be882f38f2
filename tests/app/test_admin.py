"""The admin REST API against real servers: hq only, read-only unless writes are on,
bad input is a 400 JSON error, ending an offer reaches the viewers, a connection held by
another process is closed, and a killed process leaves the process list by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import structlog
from redis.asyncio import Redis

from liveshop.commerce.reconcile import RoomFigures
from tests.conftest import ROOM, seeded_server
from tests.support import (
    UNIT,
    Client,
    RunningServer,
    ServerProcess,
    eventually,
    settings_for,
    token,
)

HQ = {"Authorization": f"Bearer {token('hq', user='ops-1')}"}
FAST_HEARTBEAT = {"heartbeat_s": 0.2, "heartbeat_ttl_s": 1.5}


@pytest.fixture
async def writable(redis: Redis, redis_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = settings_for(redis_url, tmp_path, admin_write=True, **FAST_HEARTBEAT)
    async with seeded_server(settings) as srv:
        yield srv


@pytest.fixture
async def readonly(redis: Redis, redis_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with seeded_server(settings_for(redis_url, tmp_path, **FAST_HEARTBEAT)) as srv:
        yield srv


async def call(
    srv: RunningServer | ServerProcess,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> httpx.Response:
    base = srv.http if isinstance(srv, RunningServer) else f"http://127.0.0.1:{srv.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10 * UNIT) as http:
        return await http.request(method, path, headers=HQ if headers is None else headers, **kw)


def error_code(resp: httpx.Response) -> str:
    assert resp.headers["content-type"] == "application/json"
    return str(resp.json()["error"]["code"])


async def test_only_hq_tokens_may_read_or_act(readonly: RunningServer) -> None:
    for method, path in (
        ("GET", "/api/admin/processes"),
        ("GET", "/api/admin/rooms"),
        ("GET", f"/api/admin/rooms/{ROOM}/messages"),
        ("GET", f"/api/admin/rooms/{ROOM}/connections"),
        ("POST", f"/api/admin/rooms/{ROOM}/offers/of_1/end"),
        ("POST", "/api/admin/connections/c1@x/disconnect"),
    ):
        anonymous = await call(readonly, method, path, headers={})
        assert (anonymous.status_code, error_code(anonymous)) == (401, "unauthorized"), path
        forged = await call(readonly, method, path, headers={"Authorization": "Bearer nope"})
        assert forged.status_code == 401, path
        for role in ("viewer", "broadcaster", "staff"):
            auth = {"Authorization": f"Bearer {token(role, room=ROOM)}"}
            resp = await call(readonly, method, path, headers=auth)
            assert (resp.status_code, error_code(resp)) == (403, "forbidden"), (path, role)


async def test_reads_show_processes_rooms_and_messages(readonly: RunningServer) -> None:
    me = readonly.runtime.processes
    assert me is not None
    procs = await eventually(lambda: _listed(readonly))
    assert procs["write"] is False
    [row] = [p for p in procs["processes"] if p["process_id"] == me.process_id]
    assert row["connections"] == 0 and row["version"] and row["pid"] > 0

    async def reconciled() -> dict[str, Any] | None:
        [r] = (await call(readonly, "GET", "/api/admin/rooms")).json()["rooms"]
        return r if r["reconcile"] is not None else None

    room = await eventually(reconciled)  # the reconciler beside the persister checks it
    assert room["room"] == ROOM and room["live"] is True
    assert room["seq"] == room["history"] > 0
    assert room["outbox"] == {"entries": 0, "oldest_age_ms": None}
    assert room["reconcile"] == {"delta": 0, "unexplained": 0, "since_ms": 0, "alarm": ""}

    msgs = (await call(readonly, "GET", f"/api/admin/rooms/{ROOM}/messages?limit=3")).json()
    seqs = [m["seq"] for m in msgs["messages"]]
    assert seqs == [room["seq"] - 2, room["seq"] - 1, room["seq"]]  # the last three, newest last
    assert msgs["messages"][-1]["type"] == "live"


async def _listed(srv: RunningServer) -> dict[str, Any] | None:
    body: dict[str, Any] = (await call(srv, "GET", "/api/admin/processes")).json()
    return body if body["processes"] else None


async def test_rooms_show_outbox_lag_and_reconciliation(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    """Without a persister an accepted order waits in the outbox: counted, with its age;
    the persister's reconciliation figure is shown when present."""
    settings = settings_for(redis_url, tmp_path, **FAST_HEARTBEAT)
    async with seeded_server(settings, run_persister=False) as srv:
        buyer = await Client.connect(srv.ws_url(ROOM))
        await buyer.hello(token(user="buyer"))
        ack = await buyer.request(
            {"type": "buy", "request_id": "r1", "sku": "lychee-500g", "qty": 1}, "order_ack"
        )
        assert ack["status"] == "accepted"
        figures = RoomFigures(
            delta=-2,
            unexplained=-2,
            unstored=0,
            oldest_ms=0,
            since_ms=1767950000000,
            checked_at=1767950004000,
            alarm="mismatch",
            skus={"lychee-500g": -2},
        )
        await redis.hset("ls:reconcile", ROOM, msgspec.json.encode(figures))

        async def room() -> dict[str, Any] | None:
            [r] = (await call(srv, "GET", "/api/admin/rooms")).json()["rooms"]
            return r if r["viewers"] == 1 else None  # presence reports once a second

        r = await eventually(room)
        assert r["reconcile"] == {
            "delta": -2,
            "unexplained": -2,
            "since_ms": 1767950000000,
            "alarm": "mismatch",
        }
        assert r["outbox"]["entries"] == 2  # going live's live.started entry and the order
        assert 0 <= r["outbox"]["oldest_age_ms"] < 10_000 * UNIT
        await buyer.close()


async def test_bad_input_is_a_400_json_error(writable: RunningServer) -> None:
    for method, path, body in (
        ("GET", "/api/admin/rooms/bad%20room/messages", None),
        ("GET", f"/api/admin/rooms/{ROOM}/messages?limit=zero", None),
        ("GET", f"/api/admin/rooms/{ROOM}/messages?limit=0", None),
        ("GET", f"/api/admin/rooms/{ROOM}/messages?limit=100000", None),
        ("POST", f"/api/admin/rooms/{ROOM}/offers/of%201/end", None),
        ("POST", f"/api/admin/rooms/{ROOM}/offers/of_1/end", b"{not json"),
        ("POST", f"/api/admin/rooms/{ROOM}/offers/of_1/end", b'{"surprise": 1}'),
        ("POST", "/api/admin/connections/17/disconnect", None),
        ("POST", "/api/admin/connections/c1@x/disconnect", b'{"reason": 5}'),
    ):
        resp = await call(writable, method, path, content=body)
        assert (resp.status_code, error_code(resp)) == (400, "bad_message"), path
    unknown = await call(writable, "GET", "/api/admin/rooms/nope/messages")
    assert (unknown.status_code, error_code(unknown)) == (404, "unknown_room")
    gone = await call(writable, "POST", f"/api/admin/rooms/{ROOM}/offers/of_1/end")
    assert (gone.status_code, error_code(gone)) == (404, "not_found")


async def test_writes_are_refused_and_audited_when_disabled(readonly: RunningServer) -> None:
    broadcaster = await Client.connect(readonly.ws_url(ROOM))
    await broadcaster.hello(token("broadcaster", user="owner", room=ROOM))
    offer = await _start_offer(broadcaster)
    with structlog.testing.capture_logs() as logs:
        resp = await call(readonly, "POST", f"/api/admin/rooms/{ROOM}/offers/{offer}/end")
    assert (resp.status_code, error_code(resp)) == (403, "forbidden")
    assert "LIVESHOP_ADMIN_WRITE" in resp.json()["error"]["message"]
    [audit] = [e for e in logs if e["event"] == "admin action"]
    assert (audit["who"], audit["what"], audit["target"]) == (
        "ops-1",
        "end_offer",
        f"{ROOM}/{offer}",
    )
    assert audit["result"].startswith("refused")
    rooms = (await call(readonly, "GET", "/api/admin/rooms")).json()
    assert [o["offer_id"] for o in rooms["rooms"][0]["offers"]] == [offer]  # still live
    await broadcaster.close()


async def _start_offer(broadcaster: Client) -> str:
    await broadcaster.send(
        {
            "type": "offer_start",
            "sku": "lychee-500g",
            "price": 990,
            "qty": 10,
            "duration_s": 120,
            "per_user_limit": 2,
        }
    )
    msg = await broadcaster.wait_for(lambda m: m["type"] == "offer" and m["status"] == "live")
    return str(msg["offer_id"])


async def test_ending_an_offer_reaches_every_viewer(writable: RunningServer) -> None:
    broadcaster = await Client.connect(writable.ws_url(ROOM))
    viewer = await Client.connect(writable.ws_url(ROOM))
    await broadcaster.hello(token("broadcaster", user="owner", room=ROOM))
    await viewer.hello()
    offer = await _start_offer(broadcaster)
    await viewer.wait_for(lambda m: m["type"] == "offer" and m["offer_id"] == offer)
    with structlog.testing.capture_logs() as logs:
        resp = await call(
            writable,
            "POST",
            f"/api/admin/rooms/{ROOM}/offers/{offer}/end",
            content=b'{"reason": "wrong price"}',
        )
    assert resp.status_code == 200 and resp.json()["status"] == "ended"
    ended = await viewer.wait_for(
        lambda m: m["type"] == "offer" and m["offer_id"] == offer and m["status"] == "ended"
    )
    assert ended["seq"] > 0
    [audit] = [e for e in logs if e["event"] == "admin action"]
    assert (audit["who"], audit["what"], audit["result"], audit["why"]) == (
        "ops-1",
        "end_offer",
        "ended",
        "wrong price",
    )
    again = await call(writable, "POST", f"/api/admin/rooms/{ROOM}/offers/{offer}/end")
    assert (again.status_code, error_code(again)) == (404, "not_found")
    await asyncio.gather(broadcaster.close(), viewer.close())


PROCESS_ENV = {"LIVESHOP_HEARTBEAT_S": "0.2", "LIVESHOP_HEARTBEAT_TTL_S": "1.5"}


async def _process_ids(srv: ServerProcess) -> dict[int, str]:
    body = (await call(srv, "GET", "/api/admin/processes")).json()
    return {p["pid"]: p["process_id"] for p in body["processes"]}


@pytest.mark.slow
async def test_a_killed_process_drops_out_of_the_list_by_itself(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    a = ServerProcess(tmp_path / "a", redis_url=redis_url, demo=True, extra_env=PROCESS_ENV)
    b = ServerProcess(tmp_path / "b", redis_url=redis_url, demo=True, extra_env=PROCESS_ENV)
    a.start()
    b.start()
    try:
        assert a.proc is not None and b.proc is not None
        pid_a = a.proc.pid
        pids = {pid_a, b.proc.pid}
        await eventually(lambda: _has_pids(a, pids), timeout=5)
        await eventually(lambda: _has_pids(b, pids), timeout=5)  # any process lists them all
        b.kill()
        killed = time.monotonic()
        await eventually(lambda: _has_pids(a, {pid_a}), timeout=30)
        # The TTL is 1.5 s here; 30 s is the promise at the default settings.
        assert time.monotonic() - killed < 1.5 + 2 * UNIT
    finally:
        a.stop()
        b.stop()


async def _has_pids(srv: ServerProcess, pids: set[int]) -> bool:
    return set(await _process_ids(srv)) == pids


@pytest.mark.slow
async def test_a_connection_on_another_process_is_disconnected(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    env = {**PROCESS_ENV, "LIVESHOP_ADMIN_WRITE": "true"}
    a = ServerProcess(tmp_path / "a", redis_url=redis_url, demo=True, extra_env=env)
    b = ServerProcess(tmp_path / "b", redis_url=redis_url, demo=True, extra_env=env)
    a.start()
    b.start()
    try:
        target = await Client.connect(b.ws_url(ROOM))
        bystander = await Client.connect(b.ws_url(ROOM))
        await target.hello(token(user="noisy"))
        await bystander.hello()
        assert b.proc is not None
        pid_b = b.proc.pid

        async def b_connections() -> list[dict[str, Any]] | None:
            resp = await call(a, "GET", f"/api/admin/rooms/{ROOM}/connections")
            conns = [c for c in resp.json()["connections"] if c["pid"] == pid_b]
            return conns if len(conns) == 2 else None

        conns = await eventually(b_connections, timeout=5)
        # Connection numbers count up per process: the first socket is the target.
        conn_id = min(conns, key=lambda c: int(c["conn_id"][1:].split("@")[0]))["conn_id"]
        resp = await call(a, "POST", f"/api/admin/connections/{conn_id}/disconnect")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"conn_id": conn_id, "status": "closed"}
        await asyncio.wait_for(target.closed.wait(), 5 * UNIT)
        assert target.ws.close_code == 1008
        pong = await bystander.request({"type": "ping", "t": 1}, "pong")
        assert pong["type"] == "pong"  # only that socket
        again = await call(a, "POST", f"/api/admin/connections/{conn_id}/disconnect")
        assert (again.status_code, error_code(again)) == (404, "not_found")
        await eventually(lambda: "connection closed by admin" in b.log.read_text(), timeout=5)
        assert "admin action" in a.log.read_text()
        await asyncio.gather(target.close(), bystander.close())
    finally:
        a.stop()
        b.stop()


async def test_a_stopped_server_removes_its_own_heartbeat(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    async with seeded_server(settings_for(redis_url, tmp_path, **FAST_HEARTBEAT)) as srv:
        processes = srv.runtime.processes
        assert processes is not None
        await eventually(lambda: redis.zscore("ls:processes", processes.process_id))
    assert await redis.zscore("ls:processes", processes.process_id) is None
    assert not await redis.exists(f"ls:process:{processes.process_id}")


async def test_a_deleted_chat_is_marked_in_the_rooms_messages(readonly: RunningServer) -> None:
    """The history keeps a moderator's deleted message (a resume would read a hole as a
    trimmed stream); the admin's listing says it was removed, and only that one."""
    host = await Client.connect(readonly.ws_url(ROOM))
    await host.hello(token("broadcaster", "host1", ROOM))
    viewer = await Client.connect(readonly.ws_url(ROOM))
    await viewer.hello(token(user="u1"))
    try:
        await host.send({"type": "chat", "text": "好"})  # one chat per 2 s per user
        await viewer.send({"type": "chat", "text": "广告 加我"})
        spam = await host.wait_for(lambda m: m["type"] == "chat" and m["text"] == "广告 加我")
        delete = {"type": "mod", "request_id": "m1", "action": "delete", "msg_id": spam["msg_id"]}
        assert (await host.request(delete, "mod_ack"))["status"] == "ok"
        await host.wait_for(lambda m: m["type"] == "chat_removed")
    finally:
        await host.close()
        await viewer.close()
    body = (await call(readonly, "GET", f"/api/admin/rooms/{ROOM}/messages?limit=10")).json()
    chats = {m["text"]: m.get("removed", False) for m in body["messages"] if m["type"] == "chat"}
    assert chats == {"好": False, "广告 加我": True}
