"""`/api/rooms/{room}/reservations` (预约): a signed-in viewer reserves the room's next
live (`POST`, a repeat is a no-op), takes it back (`DELETE`), or asks (`GET`); every
answer is `{"count", "reserved"}` for the caller. `PUT /api/rooms/{room}/schedule` lets the
room's broadcaster (the console) set the next live as `PUT /api/rooms/{room}` lets HQ.
Framework-free like app.api."""

from __future__ import annotations

from typing import Annotated

import msgspec

from liveshop.app.api import ApiError, ApiRequest, ApiResponse, claims_of, decode_body
from liveshop.commerce.reservations import Reservations
from liveshop.commerce.rooms import Rooms
from liveshop.core.config import Settings
from liveshop.core.errors import ErrorCode
from liveshop.core.keys import ROOM_ID


class ScheduleIn(msgspec.Struct, forbid_unknown_fields=True):
    next_live_at: Annotated[int, msgspec.Meta(ge=0, le=4_102_444_800_000)]  # 0: none
    next_title: Annotated[str, msgspec.Meta(max_length=100)] = ""


class ReservationsApi:
    def __init__(self, settings: Settings, rooms: Rooms, reservations: Reservations) -> None:
        self._settings = settings
        self._rooms = rooms
        self._reservations = reservations

    async def _caller(self, req: ApiRequest) -> tuple[str, str]:
        claims = claims_of(self._settings.secret, req)
        room_id = req.path_params.get("room_id", "")
        if not ROOM_ID.match(room_id) or not await self._rooms.exists(room_id):
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no room {room_id!r}")
        if claims.role != "viewer":
            raise ApiError(403, ErrorCode.FORBIDDEN, "viewers reserve")
        return room_id, claims.sub

    async def reserve(self, req: ApiRequest) -> ApiResponse:
        room_id, user = await self._caller(req)
        count, mine = await self._reservations.reserve(room_id, user)
        return ApiResponse(200, {"count": count, "reserved": mine})

    async def cancel(self, req: ApiRequest) -> ApiResponse:
        room_id, user = await self._caller(req)
        count, mine = await self._reservations.cancel(room_id, user)
        return ApiResponse(200, {"count": count, "reserved": mine})

    async def put_schedule(self, req: ApiRequest) -> ApiResponse:
        claims = claims_of(self._settings.secret, req)
        room_id = req.path_params.get("room_id", "")
        if not ROOM_ID.match(room_id) or not await self._rooms.exists(room_id):
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no room {room_id!r}")
        own = claims.role == "broadcaster" and claims.room in (room_id, "*")
        if not (own or claims.role == "hq"):
            raise ApiError(403, ErrorCode.FORBIDDEN, "hq, or this room's broadcaster")
        body = decode_body(req.body, ScheduleIn)
        await self._rooms.set_schedule(room_id, body.next_live_at, body.next_title)
        return ApiResponse(200, msgspec.to_builtins(body))

    async def status(self, req: ApiRequest) -> ApiResponse:
        room_id, user = await self._caller(req)
        count, mine = await self._reservations.status(room_id, user)
        return ApiResponse(200, {"count": count, "reserved": mine})
