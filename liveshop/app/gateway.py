"""The room socket around `realtime.session.ConnectionState`, with two entries: `upgrade()`
for our own wire (a typed request in, a `Refusal` or a coroutine that gets the wire
out, then `serve_socket`) and `__call__`, plain ASGI over `AsgiWire` for any ASGI
server. Explicit rather than a fake ASGI scope: no wire smuggled through a dict, no
event dict per message on the fast path; both entries share `admit` and `serve_socket`.

Owns the socket's I/O only: the handshake (origin check, room lookup), the hello
deadline, the bounded outbound queue (a hub `Sink`), and carrying out decisions by
calling the domain services, one call per message. Protocol rules live in
`realtime.session`; state lives in Redis. Contract (realtime.outbound): replies and room
messages are written in order, queued only while the transport is paused; a socket
whose room-frame queue overflows is closed `slow_consumer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from liveshop.app.league_socket import HQ_SOCKET_PATH, LeagueSockets
from liveshop.commerce.chain_groups import ChainGroups, is_chain_group
from liveshop.commerce.coaching import mentioned_skus
from liveshop.commerce.draws import Draws
from liveshop.commerce.groups import Groups
from liveshop.commerce.inventory import Inventory, RestockRefused
from liveshop.commerce.joint_rooms import JointRooms
from liveshop.commerce.moderation import Moderation, device_cookie, device_key
from liveshop.commerce.offers import Offers
from liveshop.commerce.order_book import OrderBook, room_of
from liveshop.commerce.order_states import By, State
from liveshop.commerce.packs import Packs
from liveshop.commerce.polls import Polls
from liveshop.commerce.purchases import Purchases
from liveshop.commerce.reviews import Reviews
from liveshop.commerce.rooms import Rooms, now_ms
from liveshop.commerce.stats import record_interaction
from liveshop.core import identity, metrics
from liveshop.core import protocol as p
from liveshop.core.config import Settings
from liveshop.core.errors import ByeReason, ErrorCode, Rejected, TokenError
from liveshop.core.identity import Identity
from liveshop.core.keys import ROOM_ID
from liveshop.realtime.admission import Admission, Denied
from liveshop.realtime.asgiwire import AsgiWire
from liveshop.realtime.hub import Hub, LocalRoom
from liveshop.realtime.outbound import RoomSocket
from liveshop.realtime.session import (
    Close,
    ConnectionState,
    Handle,
    InteractionRules,
    Phase,
    Reply,
)
from liveshop.realtime.wire import Accept, Refusal, RoomWire, Upgrade, Wire

log = structlog.get_logger("liveshop.app.gateway")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Inbound = Callable[[], Awaitable[str | bytes | None]]  # the next message; None: gone

HELLO_TIMEOUT_S = 10.0
_conn_ids = itertools.count(1)


@dataclass(slots=True)
class Services:
    settings: Settings
    rooms: Rooms
    inventory: Inventory
    offers: Offers
    purchases: Purchases
    hub: Hub
    redis: Redis
    order_book: OrderBook
    groups: Groups
    chain_groups: ChainGroups
    packs: Packs
    reviews: Reviews
    joint: JointRooms
    moderation: Moderation
    polls: Polls
    draws: Draws


class Gateway:
    """ASGI app for `/ws/rooms/{room_id}`."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.sockets: set[RoomSocket] = set()
        self.accepting = True
        self.admission = Admission(
            origins=services.settings.origins,
            max_sockets=services.settings.max_sockets,
            max_per_ip=services.settings.max_sockets_per_ip,
            connects_per_ip_per_s=services.settings.connects_per_ip_per_s,
            limit_loopback=services.settings.limit_loopback,
        )
        self.rules = InteractionRules()
        self.league: LeagueSockets | None = None  # /ws/hq, set by the app's wiring
        self._background: set[asyncio.Task[None]] = set()  # devices being remembered

    def admit(self, ip: str, origin: str | None) -> Denied | None:
        """The handshake's decision: None takes one of `ip`'s socket slots, which
        `serve_socket` gives back; a `Denied` is answered with its HTTP status."""
        denied = (
            Denied(503, ErrorCode.UNAVAILABLE.value, "server is shutting down")
            if not self.accepting
            else self.admission.admit(ip, origin, asyncio.get_running_loop().time())
        )
        metrics.connects.labels("accepted" if denied is None else denied.code).inc()
        return denied

    def upgrade(self, request: Upgrade) -> Refusal | Accept:
        """The wire server's handler: refuse with a JSON error, or serve the room (or,
        on `/ws/hq`, HQ's league)."""
        room_id = _room_id(request.path)
        league = self.league if request.path == HQ_SOCKET_PATH else None
        if room_id is None and league is None:
            return _refusal(Denied(404, "not_found", "no such websocket path"))
        ip = client_ip(
            request.peer, request.header("x-forwarded-for"), self.s.settings.forwarded_allow_ips
        )
        device = device_key(device_cookie(request.header("cookie")), ip)
        denied = self.admit(ip, request.header("origin"))
        if denied is not None:
            log.info("socket refused", ip=ip, status=denied.status, reason=denied.message)
            return _refusal(denied)

        async def serve(wire: RoomWire) -> None:
            if league is not None:
                try:
                    await league.serve(wire, wire.receive)
                finally:
                    self.admission.release(ip)
                return
            assert room_id is not None
            await self.serve_socket(room_id, wire, wire.receive, ip, device)

        return serve

    async def serve_hq(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`/ws/hq` over plain ASGI (the HTTP port): the league, as on the wire port."""
        league = self.league
        if league is None:
            await receive()
            await _deny(scope, send, Denied(404, "not_found", "no such websocket path"))
            return

        async def serve(wire: Wire, inbound: Inbound, ip: str) -> None:
            try:
                await league.serve(wire, inbound)
            finally:
                self.admission.release(ip)

        await self._asgi(scope, receive, send, serve)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry, for any ASGI server (and uvicorn's own websockets on the
        HTTP port): the same socket over `AsgiWire`."""
        room_id: str = scope["path_params"]["room_id"]
        cookie = dict(scope.get("headers") or []).get(b"cookie")

        async def serve(wire: Wire, inbound: Inbound, ip: str) -> None:
            device = device_key(device_cookie(cookie.decode("latin-1") if cookie else None), ip)
            await self.serve_socket(room_id, wire, inbound, ip, device)

        await self._asgi(scope, receive, send, serve)

    async def _asgi(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        serve: Callable[[Wire, Inbound, str], Awaitable[None]],
    ) -> None:
        """Admit and accept an ASGI websocket, then `serve` it over `AsgiWire`; `serve`
        gives back the address's socket slot that `admit` took."""
        event = await receive()
        if event["type"] != "websocket.connect":
            return
        origin = dict(scope.get("headers") or []).get(b"origin")
        ip = (scope.get("client") or ("unknown", 0))[0]
        denied = self.admit(ip, origin.decode("latin-1") if origin else None)
        if denied is not None:
            log.info("socket refused", ip=ip, status=denied.status, reason=denied.message)
            await _deny(scope, send, denied)
            return
        try:
            await send({"type": "websocket.accept"})
        except BaseException:
            self.admission.release(ip)
            raise
        wire = AsgiWire(send)
        try:
            await serve(wire, _asgi_inbound(receive), ip)
        finally:
            await wire.aclose()

    async def serve_socket(
        self, room_id: str, wire: Wire, inbound: Inbound, ip: str, device: str | None = None
    ) -> None:
        """Serve one accepted room socket until it is over; gives back the slot that
        `admit` took for `ip`. `inbound()` returns the next message, None when gone.
        `device`: moderation's key of the socket's device cookie and address."""
        try:
            sock = RoomSocket(wire, self.s.settings.max_queue, next(_conn_ids))
            sock.device = device
            self.sockets.add(sock)
            structlog.contextvars.bind_contextvars(conn_id=sock.conn_id, room_id=room_id)
            try:
                await self._serve(room_id, sock, inbound)
            finally:
                self.sockets.discard(sock)
                metrics.disconnects.labels(sock.close_reason or "client_closed").inc()
                sock.close(1000)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(sock.wait_closed(), 5.0)  # a paused transport
                structlog.contextvars.unbind_contextvars("conn_id", "room_id", "user_id")
        finally:
            self.admission.release(ip)

    async def _serve(self, room_id: str, sock: RoomSocket, inbound: Inbound) -> None:
        try:
            known = bool(ROOM_ID.match(room_id)) and await self.s.rooms.exists(room_id)
        except RedisError:
            sock.reply(p.error(ErrorCode.UNAVAILABLE, "store temporarily unavailable"))
            sock.close(1013, "try again later")
            return
        if not known:
            sock.bye(ByeReason.UNKNOWN_ROOM)
            return
        loop = asyncio.get_running_loop()
        state = ConnectionState(room_id, loop.time())
        hello = await self._await_hello(state, sock, inbound, loop.time() + HELLO_TIMEOUT_S)
        if hello is None:
            return
        try:
            who = identity.identity_for_room(self.s.settings.secret, hello.token, room_id)
        except TokenError as exc:
            sock.bye(exc.reason)
            return
        slow_s = 0
        if who.role == "viewer":
            try:
                seen = await self.s.moderation.admission(room_id, who.user, sock.device)
            except RedisError:
                sock.reply(p.error(ErrorCode.UNAVAILABLE, "store temporarily unavailable"))
                sock.close(1013, "try again later")
                return
            if seen.refused is not None:
                sock.bye(seen.refused)
                return
            slow_s = seen.slow_s
        state.greeted(who)
        sock.lang = hello.lang
        structlog.contextvars.bind_contextvars(user_id=who.user)
        viewer_id = (who.user or f"anon:{sock.conn_id}") if who.role == "viewer" else None
        open_sockets = metrics.connections.labels(who.role)
        open_sockets.inc()
        try:
            async with self.s.hub.join(room_id, sock, viewer_id=viewer_id, user=who.user) as room:
                room.on_removed = self._removed
                if who.role in ("broadcaster", "hq"):
                    room.consoles.add(sock)
                try:
                    if not await self._welcome(room, sock, who, hello, slow_s):
                        return
                    state.welcomed()
                    await self._read(state, room, sock, who, inbound)
                finally:
                    room.consoles.discard(sock)
        finally:
            open_sockets.dec()

    async def _await_hello(
        self, state: ConnectionState, sock: RoomSocket, inbound: Inbound, deadline: float
    ) -> p.Hello | None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await asyncio.wait_for(inbound(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                sock.bye(ByeReason.HELLO_TIMEOUT, drop_queue=False)
                return None
            if data is None:
                return None
            decision = state.receive(data, loop.time())
            _count_received(decision)
            if isinstance(decision, Handle):
                assert isinstance(decision.message, p.Hello)
                return decision.message
            if not self._apply(decision, sock):
                return None

    @staticmethod
    def _apply(decision: Reply | Close, sock: RoomSocket) -> bool:
        """Carry out a Reply or a Close; False when the connection is over."""
        if isinstance(decision, Reply):
            sock.reply(decision.message)
            return True
        sock.send_error_and_close(decision.message, decision.code)
        return False

    async def _welcome(
        self, room: LocalRoom, sock: RoomSocket, who: Identity, hello: p.Hello, slow_s: int = 0
    ) -> bool:
        try:
            snap = await self.s.rooms.snapshot(room.room_id, hello.resume_from)
        except RedisError:
            sock.reply(p.error(ErrorCode.UNAVAILABLE, "store temporarily unavailable"))
            sock.close(1013, "try again later")
            return False
        if hello.resume_from is not None:
            metrics.resumes.labels("resumed" if snap.resumed else "fresh").inc()
        state = snap.state
        try:
            deals = await self.s.chain_groups.for_room(room.room_id, now_ms())
        except RedisError:
            deals = []
        if deals:
            state = msgspec.structs.replace(state, groups=[*(state.groups or []), *deals])
        if who.user is not None:
            try:
                mine = await self.s.order_book.mine(room.room_id, who.user)
                if state.kind == "network":  # a joint room's orders live in its stores
                    for order_id in await self.s.joint.routed_order_ids(room.room_id, who.user):
                        found = await self.s.order_book.get(order_id)
                        if found is not None:
                            mine.append(found[0])
            except RedisError:
                mine = []
            state = msgspec.structs.replace(state, my_orders=mine)
        if slow_s:
            state = msgspec.structs.replace(state, chat=p.ChatMode(slow_s=slow_s))
        try:  # most rooms have none: no read then (the snapshot lists their ids)
            polls = await self.s.polls.for_room(room.room_id, snap.poll_ids)
            draws = await self.s.draws.for_room(room.room_id, snap.draw_ids)
        except RedisError:
            polls, draws = [], []
        if polls or draws:
            state = msgspec.structs.replace(state, polls=polls or None, draws=draws or None)
        if snap.state.kind == "network":  # known at once, before the sweep's next pass
            self.s.joint.know(room.room_id)
            await self.s.hub.follow(room, snap.state.stores or [])
        room.seed(snap.seq, {pr.sku: pr.name for pr in snap.state.products})
        self.s.purchases.gate(room.room_id).seed(
            snap.seq, {pr.sku: pr.stock for pr in snap.state.products}
        )
        sock.welcome(
            p.Welcome(
                room=room.room_id,
                role=who.role,
                user=who.user,
                seq=snap.seq,
                state=state,
                resumed=snap.resumed,
            ),
            snap.missed,
        )
        return True

    async def _read(
        self,
        state: ConnectionState,
        room: LocalRoom,
        sock: RoomSocket,
        who: Identity,
        inbound: Inbound,
    ) -> None:
        loop = asyncio.get_running_loop()
        while state.phase is Phase.READY and not sock.draining:
            # When we close the socket (slow consumer, shutdown) the wire ends this
            # receive with None, so no second future is needed per frame.
            data = await inbound()
            if data is None or sock.closed:
                state.closed()
                return
            decision = state.receive(data, loop.time())
            _count_received(decision)
            if not isinstance(decision, Handle):
                if not self._apply(decision, sock):
                    return
                continue
            sock.busy = True
            try:
                await self._handle(decision.message, room, sock, who)
            except Rejected as exc:
                sock.reply(
                    p.error(exc.code, exc.message, ref=_ref(decision.message), **exc.details)
                )
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("redis unavailable", error=str(exc) or type(exc).__name__)
                sock.reply(
                    p.error(
                        ErrorCode.UNAVAILABLE,
                        "store temporarily unavailable, retry",
                        ref=_ref(decision.message),
                    )
                )
            finally:
                sock.busy = False
        if sock.draining:
            # Shutdown waited for this request's answer; now say goodbye.
            sock.bye(ByeReason.SERVER_SHUTDOWN, drop_queue=False)

    async def _handle(
        self, msg: p.ClientMessage, room: LocalRoom, sock: RoomSocket, who: Identity
    ) -> None:
        room_id = room.room_id
        match msg:
            case p.Buy():
                assert who.user is not None
                if self.s.joint.is_network(room_id):  # a joint room: routed to a store
                    sock.reply(await self.s.joint.buy(room_id, who.user, msg))
                else:
                    sock.reply(await self.s.purchases.buy(room_id, who.user, msg))
            case p.Cancel():
                assert who.user is not None
                sock.reply(await self._cancel(room_id, who.user, msg))
            case p.Ping():
                sock.reply(p.Pong(t=msg.t))
            case p.Chat():
                assert who.user is not None
                text = self.rules.chat(room_id, who.user, msg.text, time.monotonic())
                host = who.role in ("broadcaster", "hq")
                removed = await self.s.moderation.chat(room_id, who.user, text, host)
                if removed is not None:  # kicked or banned on a process that missed it
                    sock.bye(removed)
                    return
                await record_interaction(
                    self.s.redis, room_id, mentioned_skus(text, room.names), now_ms()
                )
            case p.Like():
                assert who.user is not None
                if msg.sku is not None and msg.sku in room.names:
                    self.rules.like(room_id, who.user, time.monotonic())
                    await record_interaction(self.s.redis, room_id, [msg.sku], now_ms())
            case p.GoLive(pack_id=str(pack_id)):  # live.started: from the room's outbox
                await self.s.packs.go_live(room_id, pack_id, msg.title)
            case p.GoLive():
                await self.s.rooms.go_live(room_id, msg.title)
            case p.EndLive():
                totals = await self.s.rooms.end_live(room_id)
                if totals is None:
                    raise Rejected(ErrorCode.BAD_MESSAGE, "the room is not live")
                await self.s.reviews.store(room_id, totals)  # live.ended: from the outbox
            case p.Pin():
                if not await self.s.rooms.pin(room_id, msg.sku):
                    raise Rejected(ErrorCode.BAD_MESSAGE, f"unknown sku {msg.sku!r}")
            case p.Restock():
                try:
                    await self.s.inventory.restock(room_id, msg.sku, msg.qty)
                except RestockRefused as exc:
                    text = (
                        f"unknown sku {msg.sku!r}"
                        if exc.reason == "unknown_sku"
                        else f"stock would go below zero ({exc.left} left)"
                    )
                    raise Rejected(ErrorCode.BAD_MESSAGE, text) from None
            case p.OfferStart():
                await self.s.offers.start(room_id, msg)
            case p.GroupStart():
                await self.s.groups.start(room_id, msg)
            case p.GroupJoin():
                assert who.user is not None
                joining = self.s.chain_groups if is_chain_group(msg.group_id) else self.s.groups
                outcome = await joining.join(room_id, who.user, msg)
                sock.reply(outcome.ack(msg.request_id))
            case p.Mod():
                actor = who.user or who.role
                host = who.role in ("broadcaster", "hq")
                sock.reply(await self.s.moderation.act(room_id, actor, host, msg))
            case p.PollStart():
                await self.s.polls.start(room_id, msg)
            case p.Vote():
                assert who.user is not None
                await self.s.polls.vote(room_id, who.user, msg)
            case p.DrawStart():
                await self.s.draws.start(room_id, msg)
            case p.DrawEnter():
                assert who.user is not None
                await self.s.draws.enter(room_id, who.user, msg)
            case p.GroupCancel():
                await self.s.groups.cancel(room_id, msg.group_id)
            case p.OfferStop():
                if not await self.s.offers.stop(room_id, msg.offer_id):
                    raise Rejected(ErrorCode.BAD_MESSAGE, f"no live offer {msg.offer_id!r}")
            case _:
                raise Rejected(ErrorCode.BAD_MESSAGE, "unexpected message")

    def _removed(self, room_id: str, user: str, sink: object, action: str, until: int) -> None:
        """The hub closed a kicked or banned user's socket here: its device stays out for
        the same window (a fresh anonymous identity from it is refused at hello)."""
        if isinstance(sink, RoomSocket) and sink.device is not None:
            task = asyncio.create_task(
                self.s.moderation.remember_device(room_id, sink.device, action, until, user)
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _cancel(self, room_id: str, user: str, msg: p.Cancel) -> p.CancelAck:
        """The buyer's cancel: one script decides, so a cancel racing the store's `ready`
        either wins (units back, refund if paid) or is refused."""
        book = self.s.order_book
        if room_of(msg.order_id) != room_id and not await self._routed_here(room_id, msg.order_id):
            return _cancel_ack(msg, "refused", ErrorCode.NOT_FOUND.value)
        try:
            await book.move(msg.order_id, State.CANCELLED, By.BUYER, user, buyer=user)
        except Rejected as exc:
            if exc.code is ErrorCode.ILLEGAL_TRANSITION:
                found = await book.get(msg.order_id)
                if found is not None and found[0].state == "cancelled" and found[1] == user:
                    return _cancel_ack(msg, "cancelled")  # a repeat of a cancel that won
            return _cancel_ack(msg, "refused", exc.code.value)
        return _cancel_ack(msg, "cancelled")

    async def _routed_here(self, room_id: str, order_id: str) -> bool:
        """A joint room's order, fulfilled by one of its stores: its buyer cancels it here."""
        if not self.s.joint.is_network(room_id):
            return False
        found = await self.s.order_book.get(order_id)
        return found is not None and found[0].via == room_id

    async def shutdown(self) -> None:
        """Stop accepting; answer in-flight requests, then `bye server_shutdown` to every
        socket so clients reconnect elsewhere; wait at most the grace period."""
        self.accepting = False
        socks = tuple(self.sockets)
        for sock in socks:
            sock.draining = True
            if not sock.busy:
                sock.bye(ByeReason.SERVER_SHUTDOWN, drop_queue=False)
        if socks:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(s.wait_closed() for s in socks)),
                    self.s.settings.shutdown_grace_s,
                )
        for sock in socks:  # whoever is still busy after the grace period
            sock.bye(ByeReason.SERVER_SHUTDOWN, drop_queue=False)
        self.s.purchases.log_sold_out()


async def _deny(scope: Scope, send: Send, denied: Denied) -> None:
    """Refuse the upgrade with an HTTP status and a JSON error where the server can."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = msgspec.json.encode({"error": {"code": denied.code, "message": denied.message}})
        await send(
            {
                "type": "websocket.http.response.start",
                "status": denied.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})  # HTTP 403


def _refusal(denied: Denied) -> Refusal:
    body = msgspec.json.encode({"error": {"code": denied.code, "message": denied.message}})
    return Refusal(denied.status, body)


def _asgi_inbound(receive: Receive) -> Inbound:
    async def inbound() -> str | bytes | None:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return None
        text: str | None = event.get("text")
        return text if text is not None else (event.get("bytes") or b"")

    return inbound


ROOM_SOCKET_PREFIX = "/ws/rooms/"


def _room_id(path: str) -> str | None:
    if not path.startswith(ROOM_SOCKET_PREFIX):
        return None
    room_id = path[len(ROOM_SOCKET_PREFIX) :]
    return room_id if room_id and "/" not in room_id else None


def client_ip(peer: str, forwarded_for: str | None, trusted: str) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the
    right-most untrusted address of X-Forwarded-For (the left-most with `*`), as
    uvicorn's `proxy_headers` does on the HTTP port."""
    allowed = {a.strip() for a in trusted.split(",")}
    hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
    if not hops or not ("*" in allowed or peer in allowed):
        return peer
    if "*" in allowed:
        return hops[0]
    for hop in reversed(hops):
        if hop not in allowed:
            return hop
    return hops[0]


def _cancel_ack(msg: p.Cancel, status: str, reason: str | None = None) -> p.CancelAck:
    assert status in ("cancelled", "refused")
    return p.CancelAck(
        request_id=msg.request_id,
        order_id=msg.order_id,
        status="cancelled" if status == "cancelled" else "refused",
        reason=reason,
    )


def _ref(msg: p.ClientMessage) -> str:
    if isinstance(msg, p.Buy | p.Cancel | p.GroupJoin | p.Mod):
        return msg.request_id
    tag = type(msg).__struct_config__.tag
    return tag if isinstance(tag, str) else ""  # every client message has a str tag


_received: dict[str, Counter] = {}  # message type -> its counter (a tap must not look it up)


def _count_received(decision: Handle | Reply | Close) -> None:
    kind = "invalid"  # refused by the session's rules: not counted as its claimed type
    if isinstance(decision, Handle):
        tag = type(decision.message).__struct_config__.tag
        kind = tag if isinstance(tag, str) else kind
    counter = _received.get(kind)
    if counter is None:
        counter = _received[kind] = metrics.messages_received.labels(kind)
    counter.inc()
