"""REST for orders after the tap: the store's counter and board, the buyer's orders,
the payment and delivery providers' callbacks, the demo's payment stand-in.

Framework-free handlers like `api.Api` (request in, response out); validation with
msgspec, errors as `{"error": {"code", "message", …details}}` with the protocol's
statuses. Authorization: store calls need a `staff` or `broadcaster` token of the room
(or `hq`); a buyer sees only their own orders; providers prove themselves by HMAC.
"""

from __future__ import annotations

import io
import secrets
from typing import Annotated, Literal

import msgspec
import segno

from liveshop.app.api import ApiError, ApiRequest, ApiResponse, claims_of, decode_body
from liveshop.commerce.chain_groups import ChainGroupIn, ChainGroups, is_chain_group
from liveshop.commerce.delivery import CALLBACK_STATUSES
from liveshop.commerce.order_book import OrderBook, room_of
from liveshop.commerce.order_states import By, State
from liveshop.commerce.orders import Order, OrderStore
from liveshop.commerce.payments import SIGNATURE_HEADER, BadSignature, Payments, signature_ok
from liveshop.commerce.refunds import RefundLedger
from liveshop.commerce.rooms import Rooms
from liveshop.core import identity
from liveshop.core import protocol as p
from liveshop.core.config import Settings
from liveshop.core.errors import ErrorCode, Rejected
from liveshop.core.keys import ROOM_ID

STATUS = {
    ErrorCode.BAD_MESSAGE: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ILLEGAL_TRANSITION: 409,
    ErrorCode.ALREADY_VERIFIED: 409,
    ErrorCode.NOT_READY: 409,
    ErrorCode.AMOUNT_MISMATCH: 409,
    ErrorCode.UNDO_EXPIRED: 409,
    ErrorCode.PRICE_OUT_OF_BAND: 422,
    ErrorCode.LOCKED: 423,
}
Code = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
QrText = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
OrderId = Annotated[str, msgspec.Meta(min_length=1, max_length=160)]
Reason = Annotated[str, msgspec.Meta(max_length=200)]


class VerifyIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Code | None = None
    qr: QrText | None = None


class StateIn(msgspec.Struct, forbid_unknown_fields=True):
    state: Literal["ready", "out_for_delivery", "delivered", "delivery_failed", "cancelled"]
    reason: Reason = ""


class DeliveryNoteIn(msgspec.Struct, forbid_unknown_fields=True):
    order_id: OrderId
    status: Literal["assigned", "picked", "delivered", "failed"]
    event_id: Annotated[str, msgspec.Meta(max_length=128)] = ""


class DemoPayIn(msgspec.Struct, forbid_unknown_fields=True):
    order_id: OrderId


def error(code: ErrorCode, message: str, **details: object) -> ApiError:
    return ApiError(STATUS.get(code, 400), code, message, **details)


def _order_out(order: p.Order, **extra: object) -> dict[str, object]:
    body: dict[str, object] = msgspec.to_builtins(order)
    body.pop("type", None)
    body.update(extra)
    return body


def _row_out(row: Order) -> dict[str, object]:
    """A database row in the shape of the protocol's order object, plus who bought it."""
    fulfilment: dict[str, object] = {"method": row.method}
    if row.pickup_code:
        fulfilment["pickup_code"] = row.pickup_code
    if row.pickup_by:
        fulfilment["pickup_by"] = row.pickup_by
    if row.address:
        fulfilment["address"] = row.address
    out: dict[str, object] = {
        "order_id": row.order_id,
        "state": row.state,
        "version": row.version,
        "sku": row.sku,
        "qty": row.qty,
        "unit_price": row.unit_price,
        "fulfilment": fulfilment,
        "updated_at": row.updated_at,
        "created_at": row.created_at,
        "user_id": row.user_id,
        "session_id": row.session_id,
    }
    optional = {
        "pay_by": row.pay_by,
        "reason": row.reason,
        "verified_at": row.verified_at,
        "verified_by": row.verified_by,
        "delivery_status": row.delivery_status,
        "group_id": row.group_id,
        "phone": row.phone,
    }
    out.update({k: v for k, v in optional.items() if v})
    if row.refund_amount:
        out["refund"] = {"amount": row.refund_amount, "state": row.refund_state}
    return out


class OrdersApi:
    def __init__(
        self,
        settings: Settings,
        rooms: Rooms,
        book: OrderBook,
        store: OrderStore,
        refunds: RefundLedger,
        payments: Payments,
        chain_groups: ChainGroups,
    ) -> None:
        self._chain = chain_groups
        self._settings = settings
        self._rooms = rooms
        self._book = book
        self._store = store
        self._refunds = refunds
        self._payments = payments

    # -- who is calling ------------------------------------------------------------

    def _claims(self, req: ApiRequest) -> identity.Claims:
        return claims_of(self._settings.secret, req)

    def _store_staff(self, req: ApiRequest, room_id: str) -> identity.Claims:
        claims = self._claims(req)
        if claims.role == "hq" or (
            claims.role in ("staff", "broadcaster") and claims.room in (room_id, "*")
        ):
            return claims
        raise error(ErrorCode.FORBIDDEN, "staff or broadcaster of this room, or hq")

    async def _room(self, req: ApiRequest) -> str:
        room_id = req.path_params.get("room_id") or ""
        if not ROOM_ID.match(room_id) or not await self._rooms.exists(room_id):
            raise error(ErrorCode.NOT_FOUND, f"no room {room_id!r}")
        return room_id

    @staticmethod
    def _order_room(order_id: str) -> str:
        room_id = room_of(order_id)
        if room_id is None:
            raise error(ErrorCode.NOT_FOUND, f"no order {order_id!r}")
        return room_id

    # -- the counter -----------------------------------------------------------------

    async def verify(self, req: ApiRequest) -> ApiResponse:
        room_id = await self._room(req)
        claims = self._store_staff(req, room_id)
        body = decode_body(req.body, VerifyIn)
        if (body.code is None) == (body.qr is None):
            raise error(ErrorCode.BAD_MESSAGE, "give exactly one of code and qr")
        result = await self._book.verify(
            room_id, claims.sub, code=body.code or "", qr=body.qr or ""
        )
        if result.status == "verified":
            assert result.order is not None
            return ApiResponse(200, {"status": "verified", "order": _order_out(result.order)})
        if result.status == "already_verified":
            raise error(
                ErrorCode.ALREADY_VERIFIED,
                "this order was picked up already",
                verified_at=result.verified_at,
                verified_by=result.verified_by,
            )
        if result.status == "not_ready":
            raise error(ErrorCode.NOT_READY, f"the order is {result.state}, not ready")
        if result.status == "locked":
            raise error(
                ErrorCode.LOCKED,
                "too many unknown codes: try again later",
                retry_after_ms=result.retry_after_ms,
            )
        raise error(ErrorCode.NOT_FOUND, "no such pickup code in this store")

    async def undo_verify(self, req: ApiRequest) -> ApiResponse:
        order_id = req.path_params["order_id"]
        claims = self._store_staff(req, self._order_room(order_id))
        order = await self._moved(order_id, State.READY, By.UNDO_VERIFY, claims.sub, "undo")
        return ApiResponse(200, {"order": _order_out(order)})

    async def set_state(self, req: ApiRequest) -> ApiResponse:
        order_id = req.path_params["order_id"]
        claims = self._store_staff(req, self._order_room(order_id))
        body = decode_body(req.body, StateIn)
        order = await self._moved(order_id, State(body.state), By.STAFF, claims.sub, body.reason)
        return ApiResponse(200, {"order": _order_out(order)})

    async def _moved(
        self, order_id: str, target: State, by: By, actor: str, reason: str
    ) -> p.Order:
        try:
            return await self._book.move(order_id, target, by, actor, reason=reason)
        except Rejected as exc:
            raise error(exc.code, exc.message, **exc.details) from None

    async def room_orders(self, req: ApiRequest) -> ApiResponse:
        room_id = await self._room(req)
        self._store_staff(req, room_id)
        states = [s for s in req.query.get("state", "").split(",") if s]
        known = {s.value for s in State}
        if any(s not in known for s in states):
            raise error(ErrorCode.BAD_MESSAGE, f"state must be among {sorted(known)}")
        limit = _limit(req, 200)
        rows = await self._store.list(room_id=room_id, states=states, limit=limit)
        return ApiResponse(200, {"orders": [_row_out(row) for row in rows]})

    async def room_refunds(self, req: ApiRequest) -> ApiResponse:
        room_id = await self._room(req)
        self._store_staff(req, room_id)
        refunds = await self._refunds.recent(room_id=room_id, limit=_limit(req, 200))
        return ApiResponse(
            200,
            {
                "refunds": [
                    {
                        "order_id": r.order_id,
                        "reason": r.reason,
                        "amount": r.amount,
                        "state": r.state,
                        "attempts": r.attempts,
                        "created_at": r.created_at,
                        "updated_at": r.updated_at,
                    }
                    for r in refunds
                ]
            },
        )

    # -- the buyer -------------------------------------------------------------------

    async def my_orders(self, req: ApiRequest) -> ApiResponse:
        claims = self._claims(req)
        room_id = req.query.get("room_id")
        if room_id:
            if not ROOM_ID.match(room_id):
                raise error(ErrorCode.BAD_MESSAGE, "room_id must match [A-Za-z0-9_-]{1,64}")
            if claims.room not in (room_id, "*"):
                raise error(ErrorCode.FORBIDDEN, "this token is for another room")
            orders = await self._book.mine(room_id, claims.sub, limit=_limit(req, 20))
            return ApiResponse(200, {"orders": [_order_out(o) for o in orders]})
        rows = await self._store.list(user_id=claims.sub, limit=_limit(req, 50))
        return ApiResponse(200, {"orders": [_row_out(r) for r in rows]})

    # -- providers -------------------------------------------------------------------

    async def payment_notify(self, req: ApiRequest) -> ApiResponse:
        if self._payments.key is None:
            raise ApiError(503, ErrorCode.UNAVAILABLE, "LIVESHOP_PAYMENT_SECRET is not set")
        try:
            payment = await self._payments.notify(req.body, req.headers.get(SIGNATURE_HEADER))
        except BadSignature:
            raise error(ErrorCode.UNAUTHORIZED, "bad or missing X-Liveshop-Signature") from None
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise error(ErrorCode.BAD_MESSAGE, str(exc)) from None
        except Rejected as exc:
            raise error(exc.code, exc.message, **exc.details) from None
        return ApiResponse(200, raw=payment.body)

    async def demo_pay(self, req: ApiRequest) -> ApiResponse:
        """Demo only: the stand-in payment provider. Signs a real notification for the
        caller's own unpaid order and posts it down the provider's path."""
        if not self._settings.demo or self._payments.key is None:
            raise error(ErrorCode.NOT_FOUND, "demo payments are off")
        claims = self._claims(req)
        body = decode_body(req.body, DemoPayIn)
        self._order_room(body.order_id)
        found = await self._book.get(body.order_id)
        if found is None or found[1] != claims.sub:
            raise error(ErrorCode.NOT_FOUND, f"no order {body.order_id!r}")
        order = found[0]
        note, signature = self._payments.demo_notification(
            order.order_id, order.qty * order.unit_price, f"demo-{secrets.token_hex(8)}"
        )
        return await self.payment_notify(
            ApiRequest({}, {}, None, note, {SIGNATURE_HEADER: signature})
        )

    async def delivery_notify(self, req: ApiRequest) -> ApiResponse:
        key = self._settings.delivery_secret.encode() or None
        if key is None:
            raise ApiError(503, ErrorCode.UNAVAILABLE, "LIVESHOP_DELIVERY_SECRET is not set")
        if not signature_ok(key, req.body, req.headers.get(SIGNATURE_HEADER)):
            raise error(ErrorCode.UNAUTHORIZED, "bad or missing X-Liveshop-Signature")
        note = decode_body(req.body, DeliveryNoteIn)
        self._order_room(note.order_id)
        rank, target = CALLBACK_STATUSES[note.status]
        try:
            order = await self._book.delivery_status(
                note.order_id, note.status, rank, target, "delivery-provider"
            )
        except Rejected as exc:
            raise error(exc.code, exc.message, **exc.details) from None
        if order is None:
            return ApiResponse(200, {"applied": False})
        return ApiResponse(200, {"applied": True, "order": _order_out(order)})

    async def qr_svg(self, req: ApiRequest) -> ApiResponse:
        """An SVG of a QR code of `data` (the buyer's page shows its pickup QR with it;
        the text is the client's already, nothing is revealed)."""
        data = req.query.get("data", "")
        if not 1 <= len(data) <= 300:
            raise error(ErrorCode.BAD_MESSAGE, "data: 1-300 characters")
        out = io.BytesIO()
        segno.make(data, error="m").save(out, kind="svg", scale=6, border=2)
        return ApiResponse(200, raw=out.getvalue(), content_type="image/svg+xml")

    # -- HQ's cross-store deals ----------------------------------------------------------

    def _hq(self, req: ApiRequest) -> identity.Claims:
        claims = self._claims(req)
        if claims.role != "hq":
            raise error(ErrorCode.FORBIDDEN, "hq only")
        return claims

    async def start_chain_group(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        body = decode_body(req.body, ChainGroupIn)
        if body.metric == "units" and body.stock < body.threshold:
            raise error(ErrorCode.BAD_MESSAGE, "stock must be at least the units threshold")
        for room_id in body.rooms:
            if not await self._rooms.exists(room_id):
                raise error(ErrorCode.NOT_FOUND, f"no room {room_id!r}")
        try:
            group = await self._chain.start(body)
        except Rejected as exc:
            raise error(exc.code, exc.message, **exc.details) from None
        return ApiResponse(200, {"group": _group_out(group)})

    async def get_chain_group(self, req: ApiRequest) -> ApiResponse:
        self._claims(req)
        group_id = req.path_params["group_id"]
        group = await self._chain.get(group_id) if is_chain_group(group_id) else None
        if group is None:
            raise error(ErrorCode.NOT_FOUND, f"no deal {group_id!r}")
        return ApiResponse(200, {"group": _group_out(group)})

    async def cancel_chain_group(self, req: ApiRequest) -> ApiResponse:
        self._hq(req)
        group_id = req.path_params["group_id"]
        if not is_chain_group(group_id) or await self._chain.get(group_id) is None:
            raise error(ErrorCode.NOT_FOUND, f"no deal {group_id!r}")
        if not await self._chain.cancel(group_id):
            raise error(ErrorCode.ILLEGAL_TRANSITION, "only an open deal can be cancelled")
        return ApiResponse(200, {"group": _group_out(await self._chain.get(group_id))})


def _group_out(group: p.GroupState | None) -> dict[str, object]:
    body: dict[str, object] = msgspec.to_builtins(group)
    body.pop("type", None)
    return body


def _limit(req: ApiRequest, default: int) -> int:
    try:
        limit = int(req.query.get("limit", str(default)))
    except ValueError:
        raise error(ErrorCode.BAD_MESSAGE, "limit must be an integer") from None
    if not 1 <= limit <= 1000:
        raise error(ErrorCode.BAD_MESSAGE, "limit must be 1..1000")
    return limit
