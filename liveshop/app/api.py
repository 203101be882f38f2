"""Admin REST API: framework-free handlers, request in, (status, body) out.

Owns request validation (msgspec) and authorization for HTTP calls; the app factory
adapts these handlers to Starlette. Errors carry the protocol's codes:
{"error": {"code": ..., "message": ...}}. Bad input changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal, TypeVar

import msgspec
from redis.exceptions import RedisError

from liveshop.commerce.catalog import Catalog
from liveshop.commerce.inventory import Inventory
from liveshop.commerce.orders import OrderStore
from liveshop.commerce.price_bands import PriceBands
from liveshop.commerce.rooms import Rooms
from liveshop.core import identity
from liveshop.core.config import Settings
from liveshop.core.errors import ErrorCode, OutOfBand, TokenError
from liveshop.core.keys import ROOM_ID, SKU

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Url = Annotated[str, msgspec.Meta(max_length=500)]


class RoomIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    title: Annotated[str, msgspec.Meta(max_length=100)] = ""
    stream_url: Url = ""
    # v1.1 room settings (orders after the tap); absent: unchanged (defaults at first)
    payment: Literal["none", "required"] | None = None
    hold_s: Annotated[int, msgspec.Meta(ge=60, le=1800)] | None = None
    offer_hold_s: Annotated[int, msgspec.Meta(ge=60, le=1800)] | None = None
    pickup_days: Annotated[int, msgspec.Meta(ge=1, le=14)] | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    lng: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    address: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    region: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    delivery_radius_m: Annotated[int, msgspec.Meta(ge=0, le=20_000)] | None = None
    # a joint room (跨店联播): kind network and its member stores
    kind: Literal["store", "network"] | None = None
    # the schedule (v1.1): the next live, epoch ms (0: none), and its title
    next_live_at: Annotated[int, msgspec.Meta(ge=0, le=4_102_444_800_000)] | None = None
    next_title: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    stores: (
        Annotated[
            list[Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]],
            msgspec.Meta(min_length=1, max_length=500),
        ]
        | None
    ) = None

    def settings(self) -> dict[str, str]:
        """The v1.1 settings given, as the room hash stores them."""
        values = {
            "payment": self.payment,
            "hold_s": self.hold_s,
            "offer_hold_s": self.offer_hold_s,
            "pickup_days": self.pickup_days,
            "lat": self.lat,
            "lng": self.lng,
            "address": self.address,
            "region": self.region,
            "delivery_radius_m": self.delivery_radius_m,
            "kind": self.kind,
            "stores": ",".join(self.stores) if self.stores is not None else None,
            "next_live_at": self.next_live_at,
            "next_title": self.next_title,
        }
        return {
            k: repr(v) if isinstance(v, float) else str(v)
            for k, v in values.items()
            if v is not None
        }


class ProductIn(msgspec.Struct, forbid_unknown_fields=True):
    price: Annotated[int, msgspec.Meta(gt=0, le=100_000_000)]
    stock: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
    name: Name | None = None  # absent: the HQ catalog's name (and image) for the SKU
    image: Url | None = None


@dataclass(frozen=True, slots=True)
class ApiRequest:
    path_params: Mapping[str, str]
    query: Mapping[str, str]
    authorization: str | None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    body: Mapping[str, object] = field(default_factory=dict)  # encoded as JSON
    raw: bytes = b""  # sent as is instead of `body` when not empty
    content_type: str = "application/json"


class ApiError(Exception):
    """An error answer: `{"error": {"code", "message", …details}}`."""

    def __init__(self, status: int, code: ErrorCode, message: str, **details: object) -> None:
        super().__init__(message)
        self.response = ApiResponse(
            status, {"error": {"code": code.value, "message": message, **details}}
        )


Handler = Callable[[ApiRequest], Awaitable[ApiResponse]]
# (check name -> passed: any failure makes /readyz 503; details shown as they are)
ReadyCheck = Callable[[], Awaitable[tuple[Mapping[str, bool], Mapping[str, object]]]]

T = TypeVar("T")


def claims_of(secret: str, req: ApiRequest) -> identity.Claims:
    """The caller's verified token (Authorization: Bearer), else a 401 ApiError."""
    auth = req.authorization or ""
    if not auth.startswith("Bearer "):
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "Authorization: Bearer <token> required")
    try:
        return identity.verify(secret, auth[7:].strip())
    except TokenError as exc:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, str(exc)) from None


def decode_body(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ApiError(400, ErrorCode.BAD_MESSAGE, str(exc)) from None


class Api:
    def __init__(
        self,
        settings: Settings,
        rooms: Rooms,
        inventory: Inventory,
        orders: OrderStore,
        ready: ReadyCheck,
        catalog: Catalog,
        bands: PriceBands,
    ) -> None:
        self._catalog = catalog
        self._bands = bands
        self._settings = settings
        self._rooms = rooms
        self._inventory = inventory
        self._orders = orders
        self._ready = ready  # (checks that make /readyz 503, details shown as they are)

    def _claims(self, req: ApiRequest) -> identity.Claims:
        return claims_of(self._settings.secret, req)

    @staticmethod
    def _room_id(req: ApiRequest) -> str:
        room_id = (
            req.path_params.get("room_id") or req.query.get("room_id") or req.query.get("room")
        ) or ""
        if not ROOM_ID.match(room_id):
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "room_id must match [A-Za-z0-9_-]{1,64}")
        return room_id

    async def _existing_room(self, req: ApiRequest) -> str:
        room_id = self._room_id(req)
        if not await self._rooms.exists(room_id):
            raise ApiError(404, ErrorCode.UNKNOWN_ROOM, f"no room {room_id!r}")
        return room_id

    async def put_room(self, req: ApiRequest) -> ApiResponse:
        claims = self._claims(req)
        if claims.role != "hq":
            raise ApiError(403, ErrorCode.FORBIDDEN, "only hq creates rooms")
        room_id = self._room_id(req)
        body = decode_body(req.body, RoomIn)
        if body.stores is not None and body.kind != "network":
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "stores are for a room of kind network")
        if body.kind == "network" and not body.stores:
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "a network room names its member stores")
        for store in body.stores or ():
            if store == room_id or not await self._rooms.exists(store):
                raise ApiError(404, ErrorCode.NOT_FOUND, f"no member store {store!r}")
        await self._rooms.put(
            room_id,
            name=body.name,
            title=body.title,
            stream_url=body.stream_url,
            settings=body.settings(),
        )
        await self._bands.sync(rooms=[room_id])  # a new room, or a new region: its bands
        return ApiResponse(200, {"room": room_id})

    async def put_product(self, req: ApiRequest) -> ApiResponse:
        claims = self._claims(req)
        room_id = await self._existing_room(req)
        if not identity.may_manage_room(claims, room_id):
            raise ApiError(403, ErrorCode.FORBIDDEN, "hq or this room's broadcaster only")
        sku = req.path_params["sku"]
        if not SKU.match(sku):
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "sku must match [A-Za-z0-9._-]{1,64}")
        body = decode_body(req.body, ProductIn)
        name, image = body.name, body.image
        if name is None:
            item = await self._catalog.get(sku)
            if item is None:
                raise ApiError(
                    400, ErrorCode.BAD_MESSAGE, f"name required: {sku!r} is not in HQ's catalog"
                )
            name, image = item.name, image or item.image or None
        try:
            await self._inventory.put_product(
                room_id, sku, name=name, price=body.price, stock=body.stock, image=image
            )
        except OutOfBand as exc:
            raise ApiError(422, exc.code, exc.message, **exc.details) from None
        return ApiResponse(200, {"room": room_id, "sku": sku, "stock": body.stock})

    async def get_room(self, req: ApiRequest) -> ApiResponse:
        room_id = await self._existing_room(req)
        snap = await self._rooms.snapshot(room_id)
        return ApiResponse(
            200, {"room": room_id, "seq": snap.seq, **msgspec.to_builtins(snap.state)}
        )

    async def list_rooms(self, req: ApiRequest) -> ApiResponse:
        claims = self._claims(req)
        if claims.role not in ("hq", "staff"):
            raise ApiError(403, ErrorCode.FORBIDDEN, "hq or staff only")
        return ApiResponse(200, {"rooms": await self._rooms.all_ids()})

    async def list_orders(self, req: ApiRequest) -> ApiResponse:
        claims = self._claims(req)
        room_id = self._room_id(req) if req.query.get("room_id") else None
        allowed = claims.role == "hq" or (
            claims.role in ("staff", "broadcaster")
            and room_id is not None
            and claims.room in (room_id, "*")
        )
        if not allowed:
            raise ApiError(
                403, ErrorCode.FORBIDDEN, "hq, or staff/broadcaster of the room given as room_id"
            )
        try:
            limit = int(req.query.get("limit", "100"))
        except ValueError:
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "limit must be an integer") from None
        if not 1 <= limit <= 10_000:
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "limit must be 1..10000")
        orders = await self._orders.list(
            room_id=room_id, session_id=req.query.get("session_id"), limit=limit
        )
        return ApiResponse(200, {"orders": msgspec.to_builtins(orders)})

    async def list_sessions(self, req: ApiRequest) -> ApiResponse:
        claims = self._claims(req)
        room_id = await self._existing_room(req)
        if not (claims.role in ("hq", "staff") or identity.may_manage_room(claims, room_id)):
            raise ApiError(403, ErrorCode.FORBIDDEN, "hq, staff or this room's broadcaster")
        return ApiResponse(200, {"sessions": await self._rooms.sessions(room_id)})

    async def demo_token(self, req: ApiRequest) -> ApiResponse:
        """Demo only: hand a page a ready token (viewer, broadcaster or store staff of one
        room, or hq of every room for the admin page)."""
        if not self._settings.demo:
            raise ApiError(404, ErrorCode.BAD_MESSAGE, "demo tokens are off")
        role = req.query.get("role", "viewer")
        if role not in ("viewer", "broadcaster", "staff", "hq"):
            raise ApiError(
                400, ErrorCode.BAD_MESSAGE, "role must be viewer, broadcaster, staff or hq"
            )
        room_id = "*" if role == "hq" else await self._existing_room(req)
        user = req.query.get("user") or f"u-{secrets.token_hex(4)}"
        if len(user) > 64:
            raise ApiError(400, ErrorCode.BAD_MESSAGE, "user too long")
        token = identity.issue(self._settings.secret, user=user, role=role, room=room_id)
        return ApiResponse(200, {"token": token, "user": user, "role": role, "room": room_id})

    async def healthz(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, {"status": "ok"})

    async def readyz(self, req: ApiRequest) -> ApiResponse:
        checks, details = await self._ready()
        ready = all(checks.values())
        return ApiResponse(200 if ready else 503, {"ready": ready, **checks, **details})


async def guarded(handler: Handler, req: ApiRequest) -> ApiResponse:
    """Run a handler; turn ApiError and an unreachable Redis into error responses."""
    try:
        return await handler(req)
    except ApiError as exc:
        return exc.response
    except RedisError as exc:
        return ApiResponse(
            503, {"error": {"code": ErrorCode.UNAVAILABLE.value, "message": str(exc)}}
        )
