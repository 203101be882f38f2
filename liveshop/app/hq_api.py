"""HQ's REST API: the catalog, the price bands and the campaign packs (role `hq`; a
room's broadcaster and staff read their own room's bands, for the console's price field,
and the pack of their session, for the teleprompter).

Framework-free handlers like app.api's: request in, (status, body) out; errors are
`{"error": {"code", "message", …details}}`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from liveshop.app.api import ApiError, ApiRequest, ApiResponse, claims_of, decode_body
from liveshop.app.orders_api import error
from liveshop.commerce.catalog import Catalog, CatalogIn
from liveshop.commerce.draws import Draws
from liveshop.commerce.moderation import CHAIN_WORDS_MAX, Moderation
from liveshop.commerce.packs import PACK_ID, Pack, PackIn, Packs
from liveshop.commerce.price_bands import SCOPE_RE, BandIn, PriceBands
from liveshop.commerce.reviews import Reviews
from liveshop.commerce.rooms import Rooms
from liveshop.core import identity
from liveshop.core.config import Settings
from liveshop.core.errors import ErrorCode, Rejected
from liveshop.core.keys import ROOM_ID, SKU


class WordsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    words: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=40)]],
        msgspec.Meta(max_length=CHAIN_WORDS_MAX),
    ]


class HqApi:
    def __init__(
        self,
        settings: Settings,
        rooms: Rooms,
        catalog: Catalog,
        bands: PriceBands,
        packs: Packs,
        reviews: Reviews,
        moderation: Moderation,
        draws: Draws,
    ) -> None:
        self._settings = settings
        self._rooms = rooms
        self._catalog = catalog
        self._bands = bands
        self._packs = packs
        self._reviews = reviews
        self._moderation = moderation
        self._draws = draws

    def _hq(self, req: ApiRequest) -> identity.Claims:
        claims = claims_of(self._settings.secret, req)
        if claims.role != "hq":
            raise ApiError(403, ErrorCode.FORBIDDEN, "hq only")
        return claims

    @staticmethod
    def _sku(req: ApiRequest) -> str:
        sku = req.path_params.get("sku", "")
        if not SKU.match(sku):
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "sku must match [A-Za-z0-9._-]{1,64}")
        return sku

    # -- catalog ---------------------------------------------------------------------

    async def put_catalog(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        sku = self._sku(req)
        item = await self._catalog.put(sku, decode_body(req.body, CatalogIn))
        return ApiResponse(200, {"item": msgspec.to_builtins(item)})

    async def list_catalog(self, req: ApiRequest) -> ApiResponse:
        claims_of(self._settings.secret, req)  # any role: stores pick from it
        items = await self._catalog.items(req.query.get("category") or None)
        return ApiResponse(200, {"items": msgspec.to_builtins(items)})

    async def get_catalog(self, req: ApiRequest) -> ApiResponse:
        claims_of(self._settings.secret, req)
        sku = self._sku(req)
        history = await self._catalog.history(sku)
        if not history:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no catalog sku {sku!r}")
        return ApiResponse(
            200,
            {"item": msgspec.to_builtins(history[-1]), "versions": msgspec.to_builtins(history)},
        )

    # -- price bands -----------------------------------------------------------------

    async def put_band(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        sku = self._sku(req)
        body = decode_body(req.body, BandIn)
        await self._check_scope(body.scope)
        try:
            band = await self._bands.put(sku, body)
        except Rejected as exc:
            raise ApiError(400, exc.code, exc.message) from None
        return ApiResponse(200, {"band": msgspec.to_builtins(band)})

    async def delete_band(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        sku = self._sku(req)
        scope = req.query.get("scope", "")
        if not SCOPE_RE.match(scope):
            raise ApiError(
                400, ErrorCode.BAD_MESSAGE, "scope must be chain, region:<id> or store:<room>"
            )
        if not await self._bands.delete(sku, scope):
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no band for {sku!r} at {scope!r}")
        return ApiResponse(200, {"deleted": True})

    async def list_bands(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        bands = await self._bands.bands(req.query.get("sku") or None)
        return ApiResponse(200, {"bands": msgspec.to_builtins(bands)})

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

    # -- moderation ------------------------------------------------------------------

    async def room_moderation(self, req: ApiRequest) -> ApiResponse:
        """The room's moderation audit log (newest first) and its word list."""
        room_id = await self._room_reader(req)
        raw = req.query.get("limit") or "200"
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "limit must be 1-1000")
        limit = int(raw)
        log = await self._moderation.log(room_id, limit)
        words = await self._moderation.room_words(room_id)
        return ApiResponse(200, {"log": msgspec.to_builtins(log), "words": words})

    async def draw_result(self, req: ApiRequest) -> ApiResponse:
        """A drawn lucky draw with its sorted entrants: all a verifier needs (any token)."""
        claims_of(self._settings.secret, req)
        room_id = req.path_params.get("room_id", "")
        draw_id = req.path_params.get("draw_id", "")
        if not ROOM_ID.match(room_id):
            raise ApiError(404, ErrorCode.NOT_FOUND, "no drawn draw with this id in this room")
        found = await self._draws.drawn(room_id, draw_id)
        if found is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, "no drawn draw with this id in this room")
        draw, entrants = found
        return ApiResponse(200, {"draw": msgspec.to_builtins(draw), "entrants": entrants})

    async def chain_words(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        return ApiResponse(200, {"words": await self._moderation.chain_words()})

    async def put_chain_words(self, req: ApiRequest) -> ApiResponse:
        """Replace the chain's blocked words (every room, every process within 1 s)."""
        self._hq(req)
        body = decode_body(req.body, WordsIn)
        count = await self._moderation.put_chain_words(body.words)
        return ApiResponse(200, {"count": count})

    async def room_bands(self, req: ApiRequest) -> ApiResponse:
        """The bands a room's scripts enforce now (the console shows them)."""
        room_id = await self._room_reader(req)
        found = await self._bands.for_room(room_id)
        return ApiResponse(
            200,
            {
                "room": room_id,
                "bands": {sku: {"floor": f, "ceiling": c} for sku, (f, c) in found.items()},
            },
        )

    async def _check_scope(self, scope: str) -> None:
        if scope.startswith("store:") and not await self._rooms.exists(scope[6:]):
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no room {scope[6:]!r}")

    # -- campaign packs ---------------------------------------------------------------

    @staticmethod
    def _pack_id(req: ApiRequest) -> str:
        pack_id = req.path_params.get("pack_id", "")
        if not PACK_ID.match(pack_id):
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "pack_id must match [A-Za-z0-9_-]{1,64}")
        return pack_id

    async def _version(self, req: ApiRequest, pack_id: str) -> Pack:
        raw = req.query.get("version")
        if raw is not None and not raw.isdigit():
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "version must be a positive integer")
        pack = await self._packs.get(pack_id, int(raw) if raw else None)
        if pack is None:
            raise ApiError(
                404, ErrorCode.NOT_FOUND, f"no pack {pack_id!r}" + (f" v{raw}" if raw else "")
            )
        return pack

    async def put_pack(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        pack_id = self._pack_id(req)
        body = decode_body(req.body, PackIn)
        try:
            pack = await self._packs.put(pack_id, body)
        except Rejected as exc:
            raise error(exc.code, exc.message, **exc.details) from None
        return ApiResponse(200, {"pack": msgspec.to_builtins(pack)})

    async def list_packs(self, req: ApiRequest) -> ApiResponse:
        claims_of(self._settings.secret, req)  # any role: stores pick one to go live with
        return ApiResponse(200, {"packs": msgspec.to_builtins(await self._packs.latest())})

    async def get_pack(self, req: ApiRequest) -> ApiResponse:
        claims_of(self._settings.secret, req)
        pack_id = self._pack_id(req)
        versions = await self._packs.versions(pack_id)
        if not versions:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no pack {pack_id!r}")
        return ApiResponse(
            200,
            {"pack": msgspec.to_builtins(versions[-1]), "versions": msgspec.to_builtins(versions)},
        )

    async def preview_pack(self, req: ApiRequest) -> ApiResponse:
        """What going live with the pack would change in `?room=`, and every conflict."""
        claims = claims_of(self._settings.secret, req)
        pack_id = self._pack_id(req)
        room_id = req.query.get("room", "")
        if not ROOM_ID.match(room_id) or not await self._rooms.exists(room_id):
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no room {room_id!r}")
        if not (
            claims.role == "hq" or (claims.role == "broadcaster" and claims.room in (room_id, "*"))
        ):
            raise ApiError(403, ErrorCode.FORBIDDEN, "hq, or this room's broadcaster")
        pack = await self._version(req, pack_id)
        found = await self._packs.preview(pack, room_id)
        return ApiResponse(200, {"preview": msgspec.to_builtins(found)})

    async def withdraw_pack(self, req: ApiRequest) -> ApiResponse:
        """`POST /api/packs/{pack_id}/withdraw?version=` (default: the latest)."""
        self._hq(req)
        pack_id = self._pack_id(req)
        pack = await self._version(req, pack_id)
        cancelled = await self._packs.withdraw(pack_id, pack.version)
        return ApiResponse(
            200, {"pack_id": pack_id, "version": pack.version, "queued_cancelled": cancelled}
        )

    async def pack_results(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        pack_id = self._pack_id(req)
        if not await self._packs.versions(pack_id):
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no pack {pack_id!r}")
        return ApiResponse(
            200,
            {"pack_id": pack_id, "stores": msgspec.to_builtins(await self._packs.results(pack_id))},
        )

    async def room_pack(self, req: ApiRequest) -> ApiResponse:
        """The pack of the room's session: the teleprompter's lines and the offer schedule."""
        room_id = await self._room_reader(req)
        found = await self._packs.of_room(room_id)
        return ApiResponse(200, {"room": room_id, "pack": msgspec.to_builtins(found)})

    # -- the post-live review ----------------------------------------------------------

    async def session_report(self, req: ApiRequest) -> ApiResponse:
        """`GET /api/rooms/{room}/sessions/{session_id}/report`: the review (复盘)."""
        room_id = await self._room_reader(req)
        session_id = req.path_params.get("session_id", "")
        names = await self._rooms.product_names(room_id)
        found = await self._reviews.report(room_id, session_id, names)
        if found is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no session {session_id!r} in {room_id!r}")
        return ApiResponse(200, {"report": msgspec.to_builtins(found)})
