"""The room socket over real websockets: handshake, errors, roles, live updates."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import structlog
import websockets

from liveshop.app.gateway import client_ip
from liveshop.commerce.purchases import PurchaseGate
from tests.conftest import ROOM, seeded_server
from tests.support import Client, RunningServer, eventually, settings_for, token


async def test_hello_gets_welcome_with_room_state(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url(ROOM))
    welcome = await c.hello(token(user="u42"))
    assert welcome["type"] == "welcome"
    assert welcome["room"] == ROOM and welcome["role"] == "viewer" and welcome["user"] == "u42"
    assert welcome["resumed"] is False
    state = welcome["state"]
    assert state["live"] is True and state["session_id"].startswith("ls_")
    assert {p["sku"]: p["stock"] for p in state["products"]} == {
        "lychee-500g": 200,
        "mango-2pc": 120,
    }
    assert "seq" not in state and isinstance(welcome["seq"], int)
    await c.close()


async def test_buy_is_acked_and_stock_broadcast(server: RunningServer) -> None:
    buyer = await Client.connect(server.ws_url(ROOM))
    watcher = await Client.connect(server.ws_url(ROOM))
    await buyer.hello(token(user="u1"))
    seq0 = (await watcher.hello())["seq"]
    ack = await buyer.request(
        {"type": "buy", "request_id": "r-1", "sku": "lychee-500g", "qty": 2}, "order_ack"
    )
    assert ack["status"] == "accepted" and ack["unit_price"] == 1990 and ack["qty"] == 2
    assert ack["order_id"].startswith("o_") and len(ack["pickup_code"]) == 6
    assert "seq" not in ack
    stock = await watcher.wait_for(lambda m: m["type"] == "stock")
    assert stock["sku"] == "lychee-500g" and stock["left"] == 198 and stock["seq"] > seq0
    await buyer.close()
    await watcher.close()


async def test_anonymous_viewer_may_watch_but_not_buy_chat_or_like(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url(ROOM))
    welcome = await c.hello()
    assert welcome["type"] == "welcome" and "user" not in welcome
    for msg in (
        {"type": "buy", "request_id": "r", "sku": "lychee-500g", "qty": 1},
        {"type": "chat", "text": "hi"},
        {"type": "like", "sku": "lychee-500g"},
    ):
        err = await c.request(msg, "error")
        assert err["type"] == "error" and err["code"] == "unauthorized"
    pong = await c.request({"type": "ping", "t": 7}, "pong")
    assert pong == {"type": "pong", "t": 7}
    await c.close()


async def test_messages_before_hello_get_not_ready(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url(ROOM))
    err = await c.request({"type": "ping"}, "error")
    assert err["code"] == "not_ready"
    assert (await c.hello())["type"] == "welcome"
    await c.close()


async def test_bad_messages_get_bad_message_and_connection_survives(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url(ROOM))
    await c.hello(token())
    for bad in (
        '{"type":"nope"}',
        "not json",
        '{"type":"buy","request_id":"r","sku":"x","qty":"2"}',
    ):
        err = await c.request(bad, "error")
        assert err["code"] == "bad_message", err
        pong = await c.request({"type": "ping"}, "pong")  # a good message resets the streak
        assert pong["type"] == "pong"
    await c.close()


async def test_three_bad_messages_in_a_row_end_the_connection(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url(ROOM))
    await c.hello(token())
    for _ in range(3):
        await c.send("{oops")
    bye = await c.wait_for(lambda m: m["type"] == "bye")
    assert bye["reason"] == "protocol_violation"
    assert [m["code"] for m in c.of_type("error")] == ["bad_message", "bad_message"]
    await asyncio.wait_for(c.closed.wait(), 5)
    assert c.ws.close_code == 4400


async def test_frame_over_4_kib_gets_too_large_and_close_1009(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url(ROOM))
    await c.hello(token())
    await c.send({"type": "chat", "text": "x" * 5000})
    err = await c.wait_for(lambda m: m["type"] == "error")
    assert err["code"] == "too_large"
    await asyncio.wait_for(c.closed.wait(), 5)
    assert c.ws.close_code == 1009


async def test_unknown_room_says_bye_and_closes_4404(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url("nope"))
    bye = await c.wait_for(lambda m: m["type"] == "bye")
    assert bye["reason"] == "unknown_room"
    await asyncio.wait_for(c.closed.wait(), 5)
    assert c.ws.close_code == 4404


async def test_broadcaster_of_another_room_is_refused(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url(ROOM))
    bye = await c.hello(token("broadcaster", "boss", room="s999"))
    assert bye == {"type": "bye", "reason": "forbidden"}
    await asyncio.wait_for(c.closed.wait(), 5)
    assert c.ws.close_code == 4403


async def test_bad_and_expired_tokens_are_refused(server: RunningServer) -> None:
    from liveshop.core import identity
    from tests.support import SECRET

    c = await Client.connect(server.ws_url(ROOM))
    assert (await c.hello("not-a-jwt"))["reason"] == "unauthorized"
    c2 = await Client.connect(server.ws_url(ROOM))
    expired = identity.issue(SECRET, user="u", role="viewer", room="*", ttl_s=-60)
    assert (await c2.hello(expired))["reason"] == "token_expired"


async def test_viewer_cannot_send_broadcaster_messages(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url(ROOM))
    await c.hello(token(user="u1"))
    for msg in (
        {"type": "end_live"},
        {"type": "pin", "sku": "mango-2pc"},
        {"type": "restock", "sku": "mango-2pc", "qty": 5},
    ):
        err = await c.request(msg, "error")
        assert err["code"] == "forbidden"
    state = await server.runtime.services.rooms.snapshot(ROOM)  # type: ignore[union-attr]
    assert state.state.live and state.state.pinned is None
    await c.close()


async def test_broadcaster_pins_restocks_and_ends_live(server: RunningServer) -> None:
    host = await Client.connect(server.ws_url(ROOM))
    viewer = await Client.connect(server.ws_url(ROOM))
    await host.hello(token("broadcaster", "boss", room=ROOM))
    await viewer.hello()
    await host.send({"type": "pin", "sku": "mango-2pc"})
    assert (await viewer.next_of("pinned"))["sku"] == "mango-2pc"
    await host.send({"type": "restock", "sku": "mango-2pc", "qty": -20})
    assert (await viewer.next_of("stock")) | {"seq": 0, "ts": 0} == {
        "type": "stock",
        "sku": "mango-2pc",
        "left": 100,
        "seq": 0,
        "ts": 0,
    }
    err = await host.request({"type": "restock", "sku": "mango-2pc", "qty": -101}, "error")
    assert err["code"] == "bad_message" and "below zero" in err["message"]
    await host.send({"type": "end_live"})
    live = await viewer.next_of("live")
    assert live["live"] is False
    buyer = await Client.connect(server.ws_url(ROOM))
    await buyer.hello(token(user="late"))
    ack = await buyer.request(
        {"type": "buy", "request_id": "r", "sku": "mango-2pc", "qty": 1}, "order_ack"
    )
    assert ack["status"] == "rejected" and ack["reason"] == "not_live"
    await host.send({"type": "go_live", "title": "第二场"})
    live = await viewer.next_of("live")
    assert live["live"] is True and live["title"] == "第二场"


async def test_chat_reaches_the_room(server: RunningServer) -> None:
    a = await Client.connect(server.ws_url(ROOM))
    b = await Client.connect(server.ws_url(ROOM))
    await a.hello(token(user="alice"))
    await b.hello()
    await a.send({"type": "chat", "text": "荔枝甜吗?"})
    chat = await b.next_of("chat")
    assert chat["user"] == "alice" and chat["text"] == "荔枝甜吗?"
    err = await a.request({"type": "chat", "text": "again"}, "error")
    assert err["code"] == "rate_limited"
    # control characters are refused (a fresh user, so the rate limit is not what answers)
    c = await Client.connect(server.ws_url(ROOM))
    await c.hello(token(user="carol"))
    err = await c.request({"type": "chat", "text": "bell\x07"}, "error")
    assert err["code"] == "bad_message" and "control" in err["message"]
    assert not [m for m in b.of_type("chat") if "bell" in m["text"]]


async def test_viewer_count_follows_sockets(server: RunningServer) -> None:
    watchers = [await Client.connect(server.ws_url(ROOM)) for _ in range(3)]
    for w in watchers:
        await w.hello()
    msg = await watchers[0].wait_for(lambda m: m["type"] == "viewers" and m["count"] == 3, 5)
    assert msg["peak"] >= 3
    await watchers[2].close()
    await watchers[0].wait_for(lambda m: m["type"] == "viewers" and m["count"] == 2, 5)


async def test_resume_replays_missed_messages_in_order(server: RunningServer) -> None:
    c = await Client.connect(server.ws_url(ROOM))
    last = (await c.hello(token(user="u1")))["seq"]
    await c.close()
    services = server.runtime.services
    assert services is not None
    for delta in (1, 2, 3):
        await services.inventory.restock(ROOM, "lychee-500g", delta)
    c = await Client.connect(server.ws_url(ROOM))
    welcome = await c.hello(token(user="u1"), resume_from=last)
    assert welcome["resumed"] is True
    # The replay is every room message after `last` up to the welcome's seq, in order.
    replayed = await eventually(
        lambda: (
            [m for m in c.received[1:] if "seq" in m and m["seq"] <= welcome["seq"]]
            if any(m.get("seq") == welcome["seq"] for m in c.received[1:])
            else None
        )
    )
    assert [m["seq"] for m in replayed] == list(range(last + 1, welcome["seq"] + 1))
    assert [m["left"] for m in replayed if m["type"] == "stock"] == [201, 203, 206]


async def test_resume_from_a_trimmed_position_gets_a_fresh_state(server: RunningServer) -> None:
    services = server.runtime.services
    assert services is not None
    first = (await services.rooms.snapshot(ROOM)).seq
    for _ in range(25):  # 2,500 room messages: more than the history keeps
        await asyncio.gather(
            *(services.inventory.restock(ROOM, "mango-2pc", 1) for _ in range(100))
        )
    c = await Client.connect(server.ws_url(ROOM))
    welcome = await c.hello(token(user="u1"), resume_from=first)
    assert welcome["resumed"] is False
    assert welcome["seq"] >= first + 2500
    stock = {p["sku"]: p["stock"] for p in welcome["state"]["products"]}
    assert stock["mango-2pc"] == 120 + 2500
    assert {p["sku"] for p in welcome["state"]["products"]} == {"lychee-500g", "mango-2pc"}
    await c.close()


@pytest.mark.parametrize("origin", ["https://evil.example"])
async def test_foreign_origin_is_refused_when_origins_are_configured(
    redis_url: str, redis: object, tmp_path: object, origin: str
) -> None:
    from tests.support import settings_for

    srv = await RunningServer(
        settings_for(redis_url, tmp_path, allowed_origins="https://shop.example")  # type: ignore[arg-type]
    ).start()
    try:
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(srv.ws_url(ROOM), origin=origin)  # type: ignore[arg-type]
        assert info.value.response.status_code == 403
    finally:
        await srv.stop()


async def test_plain_asgi_server_speaks_the_same_protocol(
    redis: object, redis_url: str, tmp_path: Path
) -> None:
    """On the HTTP port (uvicorn's stock websockets-sansio, as under any other ASGI
    server) the gateway speaks through `AsgiWire`: same messages, same order."""
    settings = settings_for(redis_url, tmp_path)
    async with seeded_server(settings) as srv:
        buyer = await Client.connect(srv.http_ws_url(ROOM))
        watcher = await Client.connect(srv.http_ws_url(ROOM))
        await buyer.hello(token(user="u1"))
        seq0 = (await watcher.hello())["seq"]
        ack = await buyer.request(
            {"type": "buy", "request_id": "r-1", "sku": "lychee-500g", "qty": 2}, "order_ack"
        )
        assert ack["status"] == "accepted"
        stock = await watcher.wait_for(lambda m: m["type"] == "stock")
        assert stock["left"] == 198 and stock["seq"] > seq0
        for _ in range(3):
            await buyer.send("{oops")
        bye = await buyer.wait_for(lambda m: m["type"] == "bye")
        assert bye["reason"] == "protocol_violation"
        await asyncio.wait_for(buyer.closed.wait(), 5)
        assert buyer.ws.close_code == 4400
        await watcher.close()


async def test_other_websocket_paths_are_refused(server: RunningServer) -> None:
    """Starlette refuses them on the HTTP port (403), the wire with a JSON 404."""
    for path in ("/ws/other", "/ws/rooms/", f"/ws/rooms/{ROOM}/x"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=5)
        assert refused.value.response.status_code == 403
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"ws://127.0.0.1:{server.wire_port}{path}", open_timeout=5)
        assert refused.value.response.status_code == 404
        assert json.loads(refused.value.response.body)["error"]["code"] == "not_found"


BUY_MANGO = {"type": "buy", "sku": "mango-2pc"}


async def _sell_out_mango(
    server: RunningServer, user: str
) -> tuple[Client, dict[str, Any], PurchaseGate]:
    """A buyer takes all 120 mangoes (request `all`); returns once the room knows the SKU
    is sold out: the buyer, the accepted ack and the room's purchase gate here."""
    buyer = await Client.connect(server.ws_url(ROOM))
    await buyer.hello(token(user=user))
    first = await buyer.request({**BUY_MANGO, "request_id": "all", "qty": 120}, "order_ack")
    assert first["status"] == "accepted"
    services = server.runtime.services
    assert services is not None
    room = services.purchases.gate(ROOM)
    await eventually(lambda: room.stock.get("mango-2pc") == 0)  # the room knows
    return buyer, first, room


async def test_sold_out_answered_without_the_script_is_recorded(server: RunningServer) -> None:
    """A room that knows a SKU is sold out answers without the script; that answer is
    the request's answer for good: its retry after a restock is still `sold_out`."""
    host = await Client.connect(server.ws_url(ROOM))
    await host.hello(token("broadcaster", "boss", room=ROOM))
    buyer, first, room = await _sell_out_mango(server, "u7")
    late = await buyer.request({**BUY_MANGO, "request_id": "late", "qty": 1}, "order_ack")
    assert late["status"] == "rejected" and late["reason"] == "sold_out"
    await host.send({"type": "restock", "sku": "mango-2pc", "qty": 5})
    await eventually(lambda: room.stock.get("mango-2pc") == 5)
    again = await buyer.request({**BUY_MANGO, "request_id": "late", "qty": 1}, "order_ack")
    assert again == late  # the first answer, although there is stock now
    fresh = await buyer.request({**BUY_MANGO, "request_id": "fresh", "qty": 1}, "order_ack")
    assert fresh["status"] == "accepted"
    repeat = await buyer.request({**BUY_MANGO, "request_id": "all", "qty": 120}, "order_ack")
    assert repeat == first  # an accepted answer survives the fast path too
    await eventually(lambda: room.stock.get("mango-2pc") == 4)


async def test_sold_out_taps_are_logged_as_one_count_a_second(server: RunningServer) -> None:
    buyer, _, _ = await _sell_out_mango(server, "u8")
    with structlog.testing.capture_logs() as logs:
        for i in range(5):
            ack = await buyer.request(
                {**BUY_MANGO, "request_id": f"late-{i}", "qty": 1}, "order_ack"
            )
            assert ack["reason"] == "sold_out"
        await eventually(lambda: any(e["event"] == "sold-out taps answered" for e in logs), 3)
    counts = [e for e in logs if e["event"] == "sold-out taps answered"]
    assert [(e["room"], e["sku"]) for e in counts] == [(ROOM, "mango-2pc")] * len(counts)
    assert sum(e["taps"] for e in counts) == 5
    assert not [e for e in logs if e["event"] == "purchase"]  # none of them one by one


def test_the_wire_trusts_x_forwarded_for_only_from_listed_proxies() -> None:
    assert client_ip("10.0.0.5", "1.2.3.4", "127.0.0.1") == "10.0.0.5"  # not a proxy
    assert client_ip("127.0.0.1", "1.2.3.4", "127.0.0.1") == "1.2.3.4"
    assert client_ip("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", "127.0.0.1,10.0.0.2") == "1.2.3.4"
    assert client_ip("127.0.0.1", None, "127.0.0.1") == "127.0.0.1"
    assert client_ip("10.1.1.1", "1.2.3.4, 10.0.0.2", "*") == "1.2.3.4"
