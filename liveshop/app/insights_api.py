"""REST for a store's dashboard (门店经营看板), its customers with their tags, its product
suggestions (智能选品), and HQ's chain-wide dashboard. Read-only. A room's are for HQ and
the room's broadcaster or staff; the chain's for HQ.

Framework-free handlers like hq_api's: ApiRequest in, ApiResponse out; query parameters
validated with msgspec (unknown ones refused); errors `{"error": {"code", "message"}}`.
docs/insights.md has the shapes.
"""

from __future__ import annotations

import time
from typing import Annotated, TypeVar

import msgspec

from liveshop.app.api import ApiError, ApiRequest, ApiResponse, claims_of
from liveshop.commerce.catalog import Catalog
from liveshop.commerce.dashboard import END_OF_TIME, Dashboard, Window
from liveshop.commerce.rooms import Rooms
from liveshop.commerce.suggestions import SUGGESTIONS, Suggestions
from liveshop.core.config import Settings
from liveshop.core.errors import ErrorCode
from liveshop.core.keys import ROOM_ID
from liveshop.engine.database import Database

EpochMs = Annotated[int, msgspec.Meta(ge=0, le=END_OF_TIME)]


class WindowQuery(msgspec.Struct, forbid_unknown_fields=True):
    """`?since=&until=`: sessions that started in [since, until), epoch ms."""

    since: EpochMs | None = None
    until: EpochMs | None = None


class CustomersQuery(msgspec.Struct, forbid_unknown_fields=True):
    since: EpochMs | None = None
    until: EpochMs | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    offset: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0


class SuggestionsQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = SUGGESTIONS


Q = TypeVar("Q", WindowQuery, CustomersQuery, SuggestionsQuery)


def query_of(req: ApiRequest, kind: type[Q]) -> Q:
    """The query string as `kind`, numbers from their text; a 400 for anything else."""
    try:
        found = msgspec.convert(dict(req.query), kind, strict=False)
    except msgspec.ValidationError as exc:
        raise ApiError(400, ErrorCode.BAD_MESSAGE, str(exc)) from None
    since, until = getattr(found, "since", None), getattr(found, "until", None)
    if since is not None and until is not None and since >= until:
        raise ApiError(400, ErrorCode.BAD_MESSAGE, "since must be before until")
    return found


def window_of(found: WindowQuery | CustomersQuery) -> Window:
    return Window(since=found.since, until=found.until)


class InsightsApi:
    def __init__(
        self, settings: Settings, rooms: Rooms, dashboard: Dashboard, suggestions: Suggestions
    ) -> None:
        self._settings = settings
        self._rooms = rooms
        self._dashboard = dashboard
        self._suggestions = suggestions

    @classmethod
    def build(cls, settings: Settings, rooms: Rooms, db: Database) -> InsightsApi:
        catalog = Catalog(db)
        return cls(settings, rooms, Dashboard(db, catalog), Suggestions(db, catalog))

    async def _room_reader(self, req: ApiRequest) -> str:
        """The path's room, when the caller is HQ or the room's broadcaster or staff."""
        claims = claims_of(self._settings.secret, req)
        room_id = req.path_params.get("room_id", "")
        if not ROOM_ID.match(room_id) or not await self._rooms.exists(room_id):
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no room {room_id!r}")
        own_room = claims.role in ("broadcaster", "staff") and claims.room in (room_id, "*")
        if not (claims.role == "hq" or own_room):
            raise ApiError(403, ErrorCode.FORBIDDEN, "hq, or this room's broadcaster or staff")
        return room_id

    async def _name(self, room_id: str) -> str:
        return (await self._rooms.fields_of([room_id], "name"))[room_id]["name"]

    async def room_dashboard(self, req: ApiRequest) -> ApiResponse:
        """`GET /api/rooms/{room_id}/dashboard?since=&until=`"""
        room_id = await self._room_reader(req)
        window = window_of(query_of(req, WindowQuery))
        board = await self._dashboard.room(room_id, window)
        return ApiResponse(200, {**msgspec.to_builtins(board), "name": await self._name(room_id)})

    async def room_customers(self, req: ApiRequest) -> ApiResponse:
        """`GET /api/rooms/{room_id}/customers?since=&until=&limit=&offset=`"""
        room_id = await self._room_reader(req)
        found = query_of(req, CustomersQuery)
        page = await self._dashboard.customers(
            room_id, window_of(found), limit=found.limit, offset=found.offset
        )
        return ApiResponse(200, msgspec.to_builtins(page))

    async def chain_dashboard(self, req: ApiRequest) -> ApiResponse:
        """`GET /api/dashboard?since=&until=` (hq): the chain's figures and every store's."""
        claims = claims_of(self._settings.secret, req)
        if claims.role != "hq":
            raise ApiError(403, ErrorCode.FORBIDDEN, "hq only")
        window = window_of(query_of(req, WindowQuery))
        rooms = await self._rooms.all_ids()
        names = {r: f["name"] for r, f in (await self._rooms.fields_of(rooms, "name")).items()}
        board = await self._dashboard.chain(window, rooms=rooms, names=names)
        return ApiResponse(200, msgspec.to_builtins(board))

    async def room_suggestions(self, req: ApiRequest) -> ApiResponse:
        """`GET /api/rooms/{room_id}/suggestions?limit=`: for the room's next live, now."""
        room_id = await self._room_reader(req)
        found = query_of(req, SuggestionsQuery)
        rooms = await self._rooms.all_ids()
        regions = {
            r: f["region"] for r, f in (await self._rooms.fields_of(rooms, "region")).items()
        }
        shelf = (await self._rooms.snapshot(room_id)).state.products
        result = await self._suggestions.for_room(
            room_id,
            now=time.time_ns() // 1_000_000,
            regions=regions,
            listed=[p.sku for p in shelf],
            names={p.sku: p.name for p in shelf},
            limit=found.limit,
        )
        return ApiResponse(200, msgspec.to_builtins(result))
