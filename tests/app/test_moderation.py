"""Moderation over real sockets on two servers sharing one engine (two processes' hubs):
an action on process A is enforced on process B at the next message; kicks and bans
close sockets everywhere and refuse reconnects, also from another identity on the same
device; deleted messages are gone for a viewer who resumes; word lists (room and chain)
block a chat for the sender only; moderators cannot appoint; the audit log is HQ's."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.conftest import ROOM
from tests.support import UNIT, Client, RunningServer, eventually, token

HOST = token("broadcaster", "host1", ROOM)


async def joined(
    srv: RunningServer, tok: str | None, device: str | None = None, **hello: Any
) -> tuple[Client, dict[str, Any]]:
    headers = {"Cookie": f"ls_device={device}"} if device else None
    client = await Client.connect(srv.ws_url(ROOM), additional_headers=headers)
    return client, await client.hello(tok, **hello)


async def mod(host: Client, n: int, action: str, **fields: Any) -> dict[str, Any]:
    msg = {"type": "mod", "request_id": f"m{n}", "action": action, **fields}
    return await host.request(msg, "mod_ack")


async def test_a_mute_on_one_process_refuses_the_next_chat_on_another(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    host, _ = await joined(a, HOST)
    muted, _ = await joined(b, token(user="u1"))
    watcher, _ = await joined(b, token(user="w1"))
    try:
        ack = await mod(host, 1, "mute", user="u1", seconds=600, reason="spam")
        acted = time.monotonic()
        assert ack == {"type": "mod_ack", "request_id": "m1", "status": "ok"}
        notice = await muted.next_of("moderation")
        assert notice["action"] == "mute" and notice["reason"] == "spam"
        assert notice["until"] > time.time() * 1000 + 590_000
        refused = await muted.request({"type": "chat", "text": "买买买"}, "error")
        assert refused["code"] == "muted" and refused["until"] == notice["until"]
        assert time.monotonic() - acted < 1.0 * UNIT
        # a muted user still buys
        ack = await muted.request(
            {"type": "buy", "request_id": "r1", "sku": "lychee-500g", "qty": 1}, "order_ack"
        )
        assert ack["status"] == "accepted"
        assert await mod(host, 2, "unmute", user="u1") == {
            "type": "mod_ack",
            "request_id": "m2",
            "status": "ok",
        }
        await asyncio.sleep(2.05)  # the per-user chat interval of process B
        start = len(watcher.received)
        await muted.send({"type": "chat", "text": "谢谢"})
        chat = await watcher.wait_for(lambda m: m["type"] == "chat", start=start)
        assert chat["text"] == "谢谢" and chat["msg_id"] == str(chat["seq"])
        assert not [m for m in watcher.received if m["type"] == "chat" and m["text"] == "买买买"]
    finally:
        for c in (host, muted, watcher):
            await c.close()


async def test_a_kick_closes_every_socket_and_refuses_the_device(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    host, _ = await joined(a, HOST)
    on_a, _ = await joined(a, token(user="k1"), device="device-k1-0001")
    on_b, _ = await joined(b, token(user="k1"), device="device-k1-0001")
    try:
        assert (await mod(host, 1, "kick", user="k1", seconds=60))["status"] == "ok"
        for sock in (on_a, on_b):
            await asyncio.wait_for(sock.closed.wait(), 1.0 * UNIT)
            assert sock.ws.close_code == 4410
            assert sock.received[-1] == {"type": "bye", "reason": "kicked"}
            assert sock.of_type("moderation")[0]["action"] == "kick"

        async def refused_again() -> bool:
            again, said = await joined(b, token(user="k1"))
            await again.close()
            return said == {"type": "bye", "reason": "kicked"}

        assert await refused_again()
        # the device: a fresh anonymous identity, and a new account, from the same cookie

        async def device_refused(tok: str | None) -> bool:
            c, said = await joined(a, tok, device="device-k1-0001")
            await asyncio.wait_for(c.closed.wait(), 2.0 * UNIT)
            code = c.ws.close_code
            await c.close()
            return said == {"type": "bye", "reason": "kicked"} and code == 4410

        assert await eventually(lambda: device_refused(None), timeout=2.0)
        assert await device_refused(token(user="k1-new-account"))
        other, said = await joined(a, None, device="another-device-01")
        assert said["type"] == "welcome"  # another device is not refused
        await other.close()
        assert (await mod(host, 2, "unban", user="k1"))["status"] == "ok"
        back, said = await joined(b, token(user="k1"), device="device-k1-0001")
        assert said["type"] == "welcome"
        await back.close()
    finally:
        for c in (host, on_a, on_b):
            await c.close()


async def test_a_ban_removes_the_users_messages_and_lasts(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    host, _ = await joined(a, HOST)
    spammer, _ = await joined(b, token(user="s1"))
    watcher, _ = await joined(a, token(user="w2"))
    try:
        await spammer.send({"type": "chat", "text": "看我主页"})
        await watcher.wait_for(lambda m: m["type"] == "chat" and m["user"] == "s1")
        assert (await mod(host, 1, "ban", user="s1", reason="广告"))["status"] == "ok"
        removed = await watcher.next_of("chat_removed")
        assert removed["user"] == "s1" and "seq" in removed
        await asyncio.wait_for(spammer.closed.wait(), 1.0 * UNIT)
        assert spammer.received[-1] == {"type": "bye", "reason": "banned"}
        again, said = await joined(b, token(user="s1"))
        assert said == {"type": "bye", "reason": "banned"}
        await again.close()
    finally:
        for c in (host, spammer, watcher):
            await c.close()


async def test_a_deleted_message_is_gone_for_live_and_resumed_viewers(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    host, _ = await joined(a, HOST)
    writer, welcome = await joined(b, token(user="c1"))
    live, _ = await joined(a, token(user="c2"))
    try:
        before = welcome["seq"]
        await writer.send({"type": "chat", "text": "第一条"})
        first = await live.wait_for(lambda m: m["type"] == "chat" and m["text"] == "第一条")
        await asyncio.sleep(2.05)
        await writer.send({"type": "chat", "text": "第二条"})
        await live.wait_for(lambda m: m["type"] == "chat" and m["text"] == "第二条")
        assert (await mod(host, 1, "delete", msg_id=first["msg_id"]))["status"] == "ok"
        removed = await live.next_of("chat_removed")
        assert removed["msg_id"] == first["msg_id"]
        # a viewer who was away since before the message resumes: it is not there
        resumed, said = await joined(b, token(user="c3"), resume_from=before)
        assert said["resumed"] is True
        await resumed.wait_for(lambda m: m["type"] == "chat_removed")
        texts = [m["text"] for m in resumed.of_type("chat")]
        assert texts == ["第二条"]
        gone = await mod(host, 2, "delete", msg_id="999999")
        assert gone["status"] == "refused" and gone["reason"] == "not_found"
    finally:
        for c in (host, writer, live):
            await c.close()


async def test_word_lists_block_for_the_sender_only(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    host, _ = await joined(a, HOST)
    sender, _ = await joined(b, token(user="t1"))
    watcher, _ = await joined(b, token(user="t2"))
    try:
        await sender.send({"type": "chat", "text": "你好"})  # B builds the filter now
        await watcher.wait_for(lambda m: m.get("text") == "你好")
        assert (await mod(host, 1, "words_add", words=["加微信"]))["status"] == "ok"
        await asyncio.sleep(2.05)
        blocked = await sender.request({"type": "chat", "text": "便宜 加 微 信"}, "error")
        assert blocked["code"] == "blocked_word"  # B's next message: the new list
        async with httpx.AsyncClient(base_url=a.http, timeout=10 * UNIT) as http:
            hq = {"Authorization": f"Bearer {token('hq', 'hq1')}"}
            put = await http.put("/api/chain/words", json={"words": ["诈骗"]}, headers=hq)
            assert put.status_code == 200 and put.json() == {"count": 1}
            bad = await http.put("/api/chain/words", json={"words": [""]}, headers=hq)
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_message"
            await asyncio.sleep(2.05)  # the chain list applies within 1 s; chat every 2 s

            async def chain_blocks() -> bool:
                said = await sender.request({"type": "chat", "text": "这是诈.骗"}, "error")
                return said["code"] == "blocked_word"

            assert await chain_blocks()
            log = (await http.get(f"/api/rooms/{ROOM}/moderation", headers=hq)).json()
            assert log["words"] == ["加微信"]
            assert log["log"][0]["action"] == "words_add" and log["log"][0]["actor"] == "host1"
            viewer = {"Authorization": f"Bearer {token(user='t1')}"}
            denied = await http.get(f"/api/rooms/{ROOM}/moderation", headers=viewer)
            assert denied.status_code == 403
        texts = [m.get("text") for m in watcher.of_type("chat")]
        assert texts == ["你好"]  # nothing blocked was broadcast
    finally:
        for c in (host, sender, watcher):
            await c.close()


async def test_moderators_act_but_do_not_appoint(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    host, _ = await joined(a, HOST)
    moderator, _ = await joined(b, token(user="m1"))
    try:
        early = await mod(moderator, 1, "mute", user="x1", seconds=60)
        assert early["status"] == "refused" and early["reason"] == "forbidden"
        assert (await mod(host, 2, "appoint", user="m1"))["status"] == "ok"
        assert (await mod(moderator, 3, "mute", user="x1", seconds=60))["status"] == "ok"
        appoint = await mod(moderator, 4, "appoint", user="x2")
        assert appoint["reason"] == "forbidden"
        assert (await mod(host, 5, "appoint", user="m2"))["status"] == "ok"
        other = await mod(moderator, 6, "mute", user="m2", seconds=60)
        assert other["reason"] == "forbidden"  # not another moderator
        for n in range(18):
            assert (await mod(host, 10 + n, "appoint", user=f"mm{n}"))["status"] == "ok"
        full = await mod(host, 40, "appoint", user="one-too-many")
        assert full["reason"] == "out_of_range"  # at most 20
        short = await mod(host, 41, "mute", user="x1", seconds=5)
        assert short["reason"] == "out_of_range"  # mute 10 s - 7 d
        start = len(moderator.received)
        await moderator.send({"type": "chat", "text": "请文明发言"})
        chat = await moderator.wait_for(lambda m: m["type"] == "chat", start=start)
        assert chat["badge"] == "mod"
    finally:
        await host.close()
        await moderator.close()


async def test_slow_mode_is_in_the_welcome_and_enforced(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    host, _ = await joined(a, HOST)
    try:
        assert (await mod(host, 1, "slow", seconds=5))["status"] == "ok"
        viewer, welcome = await joined(b, token(user="v1"))
        assert welcome["state"]["chat"] == {"slow_s": 5}
        await viewer.send({"type": "chat", "text": "一"})
        await viewer.wait_for(lambda m: m["type"] == "chat")
        await asyncio.sleep(2.05)  # past the process's own 2 s, inside the room's 5 s
        slow = await viewer.request({"type": "chat", "text": "二"}, "error")
        assert slow["code"] == "rate_limited" and slow["until"] > time.time() * 1000
        await viewer.close()
    finally:
        await host.close()


async def test_pages_give_a_browser_its_device_cookie(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, _ = two_servers
    async with httpx.AsyncClient(base_url=a.http, timeout=10 * UNIT) as http:
        first = await http.get(f"/rooms/{ROOM}")
        cookie = first.cookies.get("ls_device")
        assert cookie is not None and len(cookie) == 24
        again = await http.get(f"/rooms/{ROOM}")  # the client sends it back: kept
        assert "ls_device" not in again.headers.get("set-cookie", "")
