"""Admin REST API for operators (the `/admin` page): processes, rooms, a room's recent
messages and connections, and two actions (end an offer, disconnect a connection).

Framework-free like `api.py`: request in, (status, body) out; every call needs an `hq`
token, actions also `LIVESHOP_ADMIN_WRITE=true`. Reads go straight to Redis; every action
writes one audit line (`admin action`). Also adapts the gateway and hub to the heartbeat's
`LocalSockets` view, so commerce never imports realtime.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, cast

import msgspec
import structlog
from redis.asyncio import Redis

from liveshop.app.api import ApiError, ApiRequest, ApiResponse
from liveshop.app.gateway import Gateway
from liveshop.commerce.offers import Offers
from liveshop.commerce.processes import (
    Processes,
    SocketInfo,
    global_conn_id,
    parse_conn_id,
)
from liveshop.commerce.reconcile import RoomFigures
from liveshop.commerce.rooms import Rooms
from liveshop.core import identity
from liveshop.core.config import Settings
from liveshop.core.errors import ErrorCode, TokenError
from liveshop.core.keys import RECONCILE, RoomKeys
from liveshop.core.replies import as_text
from liveshop.realtime.hub import Hub

log = structlog.get_logger("liveshop.app.admin")

# Close code for a socket an operator ends: PROTOCOL.md has no `bye` reason for it, and
# 1008 (policy violation) is RFC 6455's code for "the server decided", without a bye.
ADMIN_CLOSE_CODE = 1008

Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ConnId = Annotated[str, msgspec.Meta(pattern=r"^c[0-9]{1,12}@[^\s/]{1,200}$", max_length=214)]


class RoomPath(msgspec.Struct):
    room_id: Id


class OfferPath(msgspec.Struct):
    room_id: Id
    offer_id: Id


class ConnPath(msgspec.Struct):
    conn_id: ConnId


class MessagesQuery(msgspec.Struct):
    limit: Annotated[int, msgspec.Meta(ge=1, le=2000)] = 200


class ActionIn(msgspec.Struct, forbid_unknown_fields=True):
    """Optional body of an action: why, for the audit line."""

    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""


T = TypeVar("T")


def _convert(data: Mapping[str, str], kind: type[T]) -> T:
    try:
        # strict=False: path and query values arrive as text ("200" is the int 200).
        return msgspec.convert(dict(data), kind, strict=False)
    except msgspec.ValidationError as exc:
        raise ApiError(400, ErrorCode.BAD_MESSAGE, str(exc)) from None


def _action(body: bytes) -> ActionIn:
    if not body.strip():
        return ActionIn()
    try:
        return msgspec.json.decode(body, type=ActionIn)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ApiError(400, ErrorCode.BAD_MESSAGE, str(exc)) from None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_reconcile = msgspec.json.Decoder(RoomFigures)


class GatewaySockets:
    """`processes.LocalSockets` over the gateway (every socket) and the hub (their rooms)."""

    def __init__(self, gateway: Gateway, hub: Hub) -> None:
        self._gateway = gateway
        self._hub = hub

    def socket_count(self) -> int:
        return len(self._gateway.sockets)

    def local_rooms(self) -> list[str]:
        return self._hub.local_rooms()

    def socket_list(self, limit: int) -> list[SocketInfo]:
        found: list[SocketInfo] = []
        for room_id, room in list(self._hub.rooms.items()):
            for sink in tuple(room.sinks):
                conn = getattr(sink, "conn_id", None)
                if conn is None:
                    continue
                kind: Literal["viewer", "console"] = (
                    "console" if sink in room.consoles else "viewer"
                )
                found.append(SocketInfo(conn, room_id, kind))
        # Consoles first: there are few, and they are what an operator looks for.
        found.sort(key=lambda s: (s.kind != "console", s.conn))
        return found[:limit]

    def close_socket(self, conn: int, reason: str) -> bool:
        for sock in tuple(self._gateway.sockets):
            if sock.conn_id == conn and not sock.closed:
                sock.close(ADMIN_CLOSE_CODE, reason)
                return True
        return False


class AdminApi:
    def __init__(
        self, settings: Settings, redis: Redis, rooms: Rooms, offers: Offers, processes: Processes
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._rooms = rooms
        self._offers = offers
        self._processes = processes

    # -- who may ---------------------------------------------------------------------

    def _hq(self, req: ApiRequest) -> identity.Claims:
        auth = req.authorization or ""
        if not auth.startswith("Bearer "):
            raise ApiError(401, ErrorCode.UNAUTHORIZED, "Authorization: Bearer <token> required")
        try:
            claims = identity.verify(self._settings.secret, auth[7:].strip())
        except TokenError as exc:
            raise ApiError(401, ErrorCode.UNAUTHORIZED, str(exc)) from None
        if claims.role != "hq":
            raise ApiError(403, ErrorCode.FORBIDDEN, "the admin API is for hq tokens only")
        return claims

    def _writer(self, req: ApiRequest, action: str, target: str) -> identity.Claims:
        claims = self._hq(req)
        if not self._settings.admin_write:
            self._audit(claims, action, target, "refused: admin writes are off")
            raise ApiError(
                403, ErrorCode.FORBIDDEN, "admin is read-only (LIVESHOP_ADMIN_WRITE is not true)"
            )
        return claims

    @staticmethod
    def _audit(claims: identity.Claims, action: str, target: str, result: str, **kw: Any) -> None:
        # Warning, not info: a person changed the live system; keep it at any log level.
        log.warning("admin action", who=claims.sub, what=action, target=target, result=result, **kw)

    async def _existing_room(self, room_id: str) -> None:
        if not await self._rooms.exists(room_id):
            raise ApiError(404, ErrorCode.UNKNOWN_ROOM, f"no room {room_id!r}")

    # -- reads -----------------------------------------------------------------------

    async def processes(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        procs = await self._processes.live()
        rows = [
            {
                **msgspec.to_builtins(p),
                "sockets": [
                    {
                        "conn_id": global_conn_id(p.process_id, s.conn),
                        "room": s.room,
                        "kind": s.kind,
                    }
                    for s in p.sockets
                ],
            }
            for p in procs
        ]
        return ApiResponse(
            200,
            {
                "write": self._settings.admin_write,
                "now": _now_ms(),
                "me": self._processes.process_id,
                "processes": rows,
            },
        )

    async def rooms(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        room_ids = await self._rooms.all_ids()
        now = _now_ms()
        rows = []
        if room_ids:
            per_room = 8  # commands queued per room below
            async with self._redis.pipeline(transaction=False) as pipe:
                for room_id in room_ids:
                    keys = RoomKeys.of(room_id)
                    pipe.hmget(keys.room, ["name", "live", "session_id"])
                    pipe.get(keys.seq)
                    pipe.xlen(keys.history)
                    pipe.xlen(keys.outbox)
                    pipe.xrange(keys.outbox, count=1)
                    pipe.hgetall(keys.presence)
                    pipe.zrangebyscore(keys.presence_exp, now, "+inf")
                    pipe.hgetall(keys.offers)
                pipe.hmget(RECONCILE, room_ids)
                replies = await pipe.execute()
            reconcile = replies[-1]
            for i, room_id in enumerate(room_ids):
                (meta, seq, history, outbox, oldest, presence, alive, offers) = replies[
                    i * per_room : (i + 1) * per_room
                ]
                name, live, session_id = (v.decode() if v is not None else None for v in meta)
                live_ids = set(alive)
                viewers = sum(int(c) for pid, c in presence.items() if pid in live_ids)
                oldest_ms = int(oldest[0][0].split(b"-")[0]) if oldest else None
                rows.append(
                    {
                        "room": room_id,
                        "name": name or "",
                        "live": live == "1",
                        "session_id": session_id or None,
                        "viewers": viewers,
                        "seq": int(seq or 0),
                        "history": int(history),
                        "outbox": {
                            "entries": int(outbox),
                            "oldest_age_ms": None if oldest_ms is None else max(0, now - oldest_ms),
                        },
                        "reconcile": _decode_reconcile(reconcile[i]),
                        "offers": [
                            {"offer_id": k.decode(), "sku": v.decode()}
                            for k, v in sorted(offers.items())
                        ],
                    }
                )
        return ApiResponse(200, {"write": self._settings.admin_write, "now": now, "rooms": rows})

    async def room_messages(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        room_id = _convert(req.path_params, RoomPath).room_id
        limit = _convert(req.query, MessagesQuery).limit
        await self._existing_room(room_id)
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            await self._redis.xrevrange(RoomKeys.of(room_id).history, count=limit),
        )
        messages: list[dict[str, Any]] = []
        for _, fields in reversed(entries):  # newest last
            try:
                messages.append(msgspec.json.decode(fields[b"m"]))
            except (KeyError, msgspec.DecodeError):
                continue
        seqs = [m["seq"] for m in messages if isinstance(m.get("seq"), int)]
        if seqs:  # a moderator's deletes: still in the history (no hole), shown as such
            removed = await self._redis.zrangebyscore(
                RoomKeys.of(room_id).removed, min(seqs), max(seqs)
            )
            gone = {int(as_text(cast(bytes, s))) for s in removed}
            for m in messages:
                if m.get("seq") in gone:
                    m["removed"] = True
        return ApiResponse(200, {"room": room_id, "messages": messages})

    async def room_connections(self, req: ApiRequest) -> ApiResponse:
        """The room's sockets on every live process, from their heartbeats (each lists
        at most 200, consoles first)."""
        self._hq(req)
        room_id = _convert(req.path_params, RoomPath).room_id
        await self._existing_room(room_id)
        conns = [
            {
                "conn_id": global_conn_id(p.process_id, s.conn),
                "process_id": p.process_id,
                "host": p.host,
                "pid": p.pid,
                "kind": s.kind,
            }
            for p in await self._processes.live()
            for s in p.sockets
            if s.room == room_id
        ]
        return ApiResponse(
            200, {"write": self._settings.admin_write, "room": room_id, "connections": conns}
        )

    # -- actions ---------------------------------------------------------------------

    async def end_offer(self, req: ApiRequest) -> ApiResponse:
        # Raw path text, cut short: the audit line names what was asked, valid or not.
        target = f"{req.path_params.get('room_id')}/{req.path_params.get('offer_id')}"[:200]
        claims = self._writer(req, "end_offer", target)
        path = _convert(req.path_params, OfferPath)
        body = _action(req.body)
        if not await self._rooms.exists(path.room_id):
            self._audit(claims, "end_offer", target, "not_found: no such room")
            raise ApiError(404, ErrorCode.UNKNOWN_ROOM, f"no room {path.room_id!r}")
        ended = await self._offers.stop(path.room_id, path.offer_id)
        self._audit(claims, "end_offer", target, "ended" if ended else "not_found", why=body.reason)
        if not ended:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no live offer {path.offer_id!r}")
        return ApiResponse(
            200, {"room": path.room_id, "offer_id": path.offer_id, "status": "ended"}
        )

    async def disconnect(self, req: ApiRequest) -> ApiResponse:
        target = req.path_params.get("conn_id", "")[:200]
        claims = self._writer(req, "disconnect", target)
        conn_id = _convert(req.path_params, ConnPath).conn_id
        body = _action(req.body)
        parsed = parse_conn_id(conn_id)
        assert parsed is not None  # the pattern above admits only parseable ids
        process_id, conn = parsed
        if process_id not in {p.process_id for p in await self._processes.live()}:
            self._audit(claims, "disconnect", conn_id, "not_found: no such process")
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no live process {process_id!r}")
        result = await self._processes.request_disconnect(process_id, conn, by=claims.sub)
        self._audit(claims, "disconnect", conn_id, result, why=body.reason)
        if result == "not_found":
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no connection {conn_id!r}")
        # `requested`: the process has not answered yet (202); it closes the socket when
        # its loop takes the request.
        status = 200 if result == "closed" else 202
        return ApiResponse(status, {"conn_id": conn_id, "status": result})


def _decode_reconcile(raw: bytes | None) -> dict[str, int | str] | None:
    """The reconciler's figures for a room, or None (the page shows —)."""
    if raw is None:
        return None
    try:
        r = _reconcile.decode(raw)
    except msgspec.DecodeError:
        return None
    return {
        "delta": r.delta,
        "unexplained": r.unexplained,
        "since_ms": r.since_ms,
        "alarm": r.alarm,
    }
