"""The room socket protocol (docs/protocol.md) as msgspec Structs.

Base module: pure data and codecs, no I/O, imports only `errors`. Client messages are
a tagged union on `type`; decoding validates types and ranges in one pass. Unknown
fields are ignored so that clients may send optional fields added later.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeGuard, get_args

import msgspec

from liveshop.core.errors import ErrorCode

MAX_FRAME_BYTES = 4096

RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Sku = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
OfferId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ChatText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Title = Annotated[str, msgspec.Meta(max_length=100)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=999)]
Price = Annotated[int, msgspec.Meta(gt=0, le=100_000_000)]
StockDelta = Annotated[int, msgspec.Meta(ge=-1_000_000, le=1_000_000)]
Lang = Literal["zh-CN", "en"]
Role = Literal["viewer", "broadcaster", "staff", "hq"]
OfferStatus = Literal["live", "sold_out", "ended"]
Severity = Literal["info", "act_now"]

_OFFER_STATUSES = frozenset(get_args(OfferStatus))


def is_offer_status(value: str) -> TypeGuard[OfferStatus]:
    """Narrows a status read back from an offer hash (the Lua scripts write it)."""
    return value in _OFFER_STATUSES


# Each message class repeats frozen=True: msgspec inherits it from the base anyway, but
# type checkers read only a class's own keywords (dataclass_transform).
class _Client(msgspec.Struct, tag_field="type", forbid_unknown_fields=False, frozen=True):
    """Base of client → server messages."""


class Hello(_Client, tag="hello", frozen=True):
    token: str | None = None
    resume_from: Annotated[int, msgspec.Meta(ge=0)] | None = None
    lang: Lang = "zh-CN"


class PickupIn(msgspec.Struct, tag_field="method", tag="pickup", frozen=True):
    # in a joint room (kind network): the member store the buyer picks up at
    store: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None


Address = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]
Phone = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class DeliveryIn(msgspec.Struct, tag_field="method", tag="delivery", frozen=True):
    address: Address
    lat: Latitude
    lng: Longitude
    phone: Phone | None = None


class Buy(_Client, tag="buy", frozen=True):
    request_id: RequestId
    sku: Sku
    qty: Quantity
    offer_id: OfferId | None = None
    fulfilment: PickupIn | DeliveryIn | None = None  # v1.1; absent = pickup


class Cancel(_Client, tag="cancel", frozen=True):
    request_id: RequestId
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=160)]


class Chat(_Client, tag="chat", frozen=True):
    text: ChatText


class Like(_Client, tag="like", frozen=True):
    sku: Sku | None = None


class Ping(_Client, tag="ping", frozen=True):
    t: int | None = None


class GoLive(_Client, tag="go_live", frozen=True):
    title: Title | None = None
    pack_id: str | None = None


class EndLive(_Client, tag="end_live", frozen=True):
    pass


class Pin(_Client, tag="pin", frozen=True):
    sku: Sku


class OfferStart(_Client, tag="offer_start", frozen=True):
    sku: Sku
    price: Price
    qty: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    duration_s: Annotated[int, msgspec.Meta(ge=10, le=3600)]
    per_user_limit: Annotated[int, msgspec.Meta(ge=1, le=999)]


class OfferStop(_Client, tag="offer_stop", frozen=True):
    offer_id: OfferId


class Restock(_Client, tag="restock", frozen=True):
    sku: Sku
    qty: StockDelta


class GroupStart(_Client, tag="group_start", frozen=True):
    sku: Sku
    price: Price
    threshold: Annotated[int, msgspec.Meta(ge=2, le=10_000)]
    duration_s: Annotated[int, msgspec.Meta(ge=600, le=259_200)]
    cap: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    per_user_limit: Annotated[int, msgspec.Meta(ge=1, le=999)]
    metric: Literal["buyers", "units"] = "buyers"


GroupId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class GroupJoin(_Client, tag="group_join", frozen=True):
    request_id: RequestId
    group_id: GroupId
    qty: Quantity


class GroupCancel(_Client, tag="group_cancel", frozen=True):
    group_id: GroupId


UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ModAction = Literal[
    "delete",
    "mute",
    "unmute",
    "kick",
    "ban",
    "unban",
    "slow",
    "words_add",
    "words_remove",
    "appoint",
    "dismiss",
]
Term = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class Mod(_Client, tag="mod", frozen=True):
    """A moderation action (PROTOCOL.md "Moderation and interaction"); which fields an
    action needs and the ranges of `seconds` are checked by `commerce.moderation`."""

    request_id: RequestId
    action: ModAction
    user: UserId | None = None
    msg_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    seconds: Annotated[int, msgspec.Meta(ge=0, le=604_800)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    words: Annotated[list[Term], msgspec.Meta(min_length=1, max_length=50)] | None = None


PollId = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class PollStart(_Client, tag="poll_start", frozen=True):
    question: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    options: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=40)]],
        msgspec.Meta(min_length=2, max_length=6),
    ]
    duration_s: Annotated[int, msgspec.Meta(ge=10, le=600)]


class Vote(_Client, tag="vote", frozen=True):
    poll_id: PollId
    option: Annotated[int, msgspec.Meta(ge=0, le=5)]


DrawId = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class DrawStart(_Client, tag="draw_start", frozen=True):
    prize: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    winners: Annotated[int, msgspec.Meta(ge=1, le=100)]
    duration_s: Annotated[int, msgspec.Meta(ge=10, le=600)]
    eligible: Literal["all", "chatted", "buyers"] = "all"


class DrawEnter(_Client, tag="draw_enter", frozen=True):
    draw_id: DrawId


ClientMessage = (
    Hello
    | Buy
    | Cancel
    | Chat
    | Like
    | Ping
    | GoLive
    | EndLive
    | Pin
    | OfferStart
    | OfferStop
    | Restock
    | GroupStart
    | GroupJoin
    | GroupCancel
    | Mod
    | PollStart
    | Vote
    | DrawStart
    | DrawEnter
)

CLIENT_TYPES = frozenset(t.__struct_config__.tag for t in get_args(ClientMessage))
VIEWER_ACTIONS = (
    Buy,
    Cancel,
    Chat,
    Like,
    GroupJoin,
    Mod,
    Vote,
    DrawEnter,
)  # Mod: a moderator's, or the host's (the script tells them apart)
BROADCASTER_ACTIONS = (
    GoLive,
    EndLive,
    Pin,
    OfferStart,
    OfferStop,
    Restock,
    GroupStart,
    GroupCancel,
    PollStart,
    DrawStart,
)


# ---- server → client ---------------------------------------------------------------


class _Server(msgspec.Struct, tag_field="type", omit_defaults=True, frozen=True):
    """Base of server → client messages. Optional fields are omitted when unset."""


class Product(msgspec.Struct, omit_defaults=True, frozen=True):
    sku: str
    name: str
    price: int
    stock: int
    image: str | None = None


class OfferState(msgspec.Struct, omit_defaults=True, frozen=True):
    offer_id: str
    sku: str
    price: int
    qty: int
    left: int
    per_user_limit: int
    starts_at: int
    ends_at: int
    status: OfferStatus


OrderState = Literal[
    "awaiting_payment",
    "accepted",
    "paid",
    "ready",
    "out_for_delivery",
    "picked_up",
    "uncollected",
    "delivered",
    "delivery_failed",
    "expired",
    "cancelled",
    "pending_group",
]


class Fulfilment(msgspec.Struct, omit_defaults=True, frozen=True):
    method: Literal["pickup", "delivery"]
    pickup_code: str | None = None
    pickup_by: int | None = None
    address: str | None = None
    qr: str | None = None  # an addition: the signed QR text, for the buyer's page


class Refund(msgspec.Struct, frozen=True):
    amount: int
    state: Literal["pending", "done", "failed"]


class RouteOut(msgspec.Struct, frozen=True):
    """How a joint room's order found its store (PROTOCOL.md, joint rooms)."""

    distance_m: int
    rule: Literal["chosen", "nearest_in_stock"]


class Order(_Server, tag="order", frozen=True):
    """An order after the tap: sent to the buyer's sockets on creation and each change
    (no seq), and the element of `welcome.state.my_orders` and the order REST calls."""

    order_id: str
    state: OrderState
    version: int
    sku: str
    qty: int
    unit_price: int
    fulfilment: Fulfilment
    updated_at: int
    pay_by: int | None = None
    refund: Refund | None = None
    reason: str | None = None
    # Additions:
    created_at: int | None = None
    group_id: str | None = None
    verified_at: int | None = None
    verified_by: str | None = None
    delivery_status: str | None = None
    # a joint room's order: the joint room, the member store that fulfils it, the route
    via: str | None = None
    store: str | None = None
    route: RouteOut | None = None


GroupStatus = Literal["open", "succeeded", "failed", "cancelled"]


class GroupState(_Server, tag="group", frozen=True):
    """A group on the room stream (with seq, ts) and in `welcome.state.groups`."""

    group_id: str
    sku: str
    price: int
    metric: Literal["buyers", "units"]
    threshold: int
    value: int
    cap: int
    ends_at: int
    status: GroupStatus
    left: int | None = None  # additions: units not joined yet, and the per-user limit
    per_user_limit: int | None = None
    rooms: list[str] | None = None
    seq: int | None = None
    ts: int | None = None


class RoomState(msgspec.Struct, omit_defaults=True, frozen=True):
    live: bool
    viewers: int
    products: list[Product]
    offers: list[OfferState]
    session_id: str | None = None
    title: str | None = None
    pinned: str | None = None
    # Extensions (optional, PROTOCOL.md allows adding optional fields):
    name: str | None = None
    stream_url: str | None = None
    peak: int | None = None
    my_orders: list[Order] | None = None  # v1.1: the user's last 20 orders in the room
    groups: list[GroupState] | None = None  # v1.1: open groups, and closed in 10 min
    # v1.1 joint rooms: kind "network" and the member stores a buyer may pick up at
    kind: Literal["network"] | None = None
    stores: list[str] | None = None
    chat: ChatMode | None = None  # v1.1 moderation: the room's slow mode
    polls: list[Poll] | None = None  # v1.1: open polls, and those closed in 10 min
    draws: list[Draw] | None = None  # v1.1: open draws, and those drawn in 10 min
    # v1.1 schedule, while the room is not live: the next live (epoch ms), its title, and
    # how many viewers reserved it (预约)
    next_live_at: int | None = None
    next_title: str | None = None
    reservations: int | None = None


class Welcome(_Server, tag="welcome", frozen=True):
    room: str
    role: Role
    seq: int
    state: RoomState
    resumed: bool
    user: str | None = None


class OrderAck(_Server, tag="order_ack", frozen=True):
    request_id: str
    status: Literal["accepted", "rejected"]
    sku: str
    qty: int
    order_id: str | None = None
    pickup_code: str | None = None
    unit_price: int | None = None
    reason: str | None = None
    state: OrderState | None = None  # v1.1
    pay_by: int | None = None  # v1.1: in a `payment: required` room
    group_id: str | None = None  # v1.1: the answer to a group_join
    store: str | None = None  # v1.1: a joint room's purchase: the member store, its route
    route: RouteOut | None = None


class CancelAck(_Server, tag="cancel_ack", frozen=True):
    request_id: str
    order_id: str
    status: Literal["cancelled", "refused"]
    reason: str | None = None


class Pong(_Server, tag="pong", frozen=True):
    t: int | None = None


class Error(_Server, tag="error", frozen=True):
    code: str
    message: str
    ref: str | None = None
    # details of some codes (v1.1): price_out_of_band's band
    floor: int | None = None
    ceiling: int | None = None
    until: int | None = None  # muted (and a slow mode's next allowed chat): epoch ms


class Bye(_Server, tag="bye", frozen=True):
    reason: str


class Hint(_Server, tag="hint", frozen=True):
    code: str
    text: str
    lang: Lang
    severity: Severity
    sku: str | None = None
    seq: int | None = None
    ts: int | None = None


class TopProduct(msgspec.Struct, frozen=True):
    sku: str
    units: int
    gmv: int


class StatsReconcile(msgspec.Struct, omit_defaults=True, frozen=True):
    """Units the engine sold that are not (yet) in the order database, and the alarm
    (`lagging`, `mismatch`) when that has lasted too long. Added to v1's `stats`."""

    delta: int
    alarm: str = ""


class StatsGroups(msgspec.Struct, frozen=True):
    """The room's groups (open, or closed in the last 10 min) in `stats`: an addition."""

    open: int
    succeeded: int
    failed: int  # failed or cancelled
    joins: int = 0  # accepted joins in this session (the room's groups and HQ deals)


class Stats(_Server, tag="stats", frozen=True):
    session_id: str
    viewers: int
    peak: int
    orders: int
    units: int
    gmv: int
    conversion: float
    top: list[TopProduct]
    reconcile: StatsReconcile | None = None  # an addition: absent when nothing judged it
    groups: StatsGroups | None = None  # an addition: absent without groups
    seq: int | None = None
    ts: int | None = None


# Room stream messages: built by the Lua scripts (they own `seq`), decoded here for
# tests, tools and the load tester. `seq` and `ts` are always present on these.


class Viewers(_Server, tag="viewers", frozen=True):
    count: int
    peak: int
    seq: int
    ts: int


class Stock(_Server, tag="stock", frozen=True):
    sku: str
    left: int
    seq: int
    ts: int
    held: int = 0  # v1.1: sent when not 0


class Offer(_Server, tag="offer", frozen=True):
    offer_id: str
    sku: str
    price: int
    qty: int
    left: int
    per_user_limit: int
    starts_at: int
    ends_at: int
    status: OfferStatus
    seq: int
    ts: int


class Pinned(_Server, tag="pinned", frozen=True):
    sku: str
    seq: int
    ts: int


class Live(_Server, tag="live", frozen=True):
    live: bool
    session_id: str
    seq: int
    ts: int
    title: str | None = None


class ChatOut(_Server, tag="chat", frozen=True):
    user: str
    text: str
    seq: int
    ts: int
    msg_id: str | None = None  # v1.1: what `mod` `delete` names
    badge: Literal["host", "mod", "buyer"] | None = None


class ChatRemoved(_Server, tag="chat_removed", frozen=True):
    """v1.1: one message deleted (`msg_id`), or every message of a banned `user`."""

    seq: int
    ts: int
    msg_id: str | None = None
    user: str | None = None


class ModAck(_Server, tag="mod_ack", frozen=True):
    request_id: str
    status: Literal["ok", "refused"]
    reason: str | None = None


class Moderation(_Server, tag="moderation", frozen=True):
    """v1.1: to the user acted on (`until`: epoch ms; absent for a ban)."""

    action: str
    until: int | None = None
    reason: str | None = None


class Poll(_Server, tag="poll", frozen=True):
    """v1.1: a poll's live counts (in the order of `options`), coalesced on the stream."""

    poll_id: str
    question: str
    options: list[str]
    counts: list[int]
    ends_at: int
    status: Literal["open", "closed"]
    seq: int | None = None
    ts: int | None = None


class Draw(_Server, tag="draw", frozen=True):
    """v1.1: a lucky draw (福袋). `commitment` is the SHA-256 of the seed from the start;
    `seed` and `winners` come at `drawn` (commerce.draws.winners recomputes them)."""

    draw_id: str
    prize: str
    winners_count: int
    entrants: int
    ends_at: int
    status: Literal["open", "drawn"]
    commitment: str
    eligible: str | None = None
    seed: str | None = None
    winners: list[str] | None = None
    seq: int | None = None
    ts: int | None = None


class ChatMode(msgspec.Struct, frozen=True):
    slow_s: int


# -- HQ's league socket (/ws/hq): its own welcome; not in ServerMessage (same tag) --


class LeagueRow(msgspec.Struct, omit_defaults=True, frozen=True):
    """One room in HQ's league: the live session's figures (`conversion` = buyers /
    distinct viewers of the session; `holds` = units held in unpaid orders and open
    groups; `hints` = coaching hints fired in the session; `pack` = the session's pack)."""

    room: str
    name: str
    region: str
    live: bool
    viewers: int
    peak: int
    orders: int
    units: int
    gmv: int
    conversion: float
    holds: int
    groups_open: int
    hints: int
    pack: str | None = None


class LeagueWelcome(_Server, tag="welcome", frozen=True):
    role: Role
    rows: list[LeagueRow]
    ts: int
    user: str | None = None


class League(_Server, tag="league", frozen=True):
    """Rows that changed since this socket's last message: each has `room` and the
    fields whose value changed (a client merges them into the rows it has)."""

    rows: list[dict[str, object]]
    ts: int


ServerMessage = (
    Welcome
    | OrderAck
    | Order
    | CancelAck
    | GroupState
    | Pong
    | Error
    | Bye
    | Hint
    | Stats
    | Viewers
    | Stock
    | Offer
    | Pinned
    | Live
    | ChatOut
    | ChatRemoved
    | ModAck
    | Moderation
    | Poll
    | Draw
)

_client_decoder = msgspec.json.Decoder(ClientMessage)
_server_decoder = msgspec.json.Decoder(ServerMessage)
_encoder = msgspec.json.Encoder()


class DecodeFailure(msgspec.Struct, frozen=True):
    """Why a client frame was not a valid message; `message` is safe to show."""

    message: str


def decode_client(data: str | bytes) -> ClientMessage | DecodeFailure:
    """Decode and validate one client frame; never raises on bad input."""
    try:
        return _client_decoder.decode(data)
    except msgspec.ValidationError as exc:
        return DecodeFailure(f"invalid message: {exc}")
    except msgspec.DecodeError as exc:
        return DecodeFailure(f"invalid JSON: {exc}")
    except UnicodeDecodeError:
        return DecodeFailure("invalid UTF-8")


def decode_server(data: str | bytes) -> ServerMessage:
    """Decode a server message (for tests, tools and clients written in Python)."""
    return _server_decoder.decode(data)


def encode(message: msgspec.Struct) -> str:
    """Encode a message to the text of one websocket frame."""
    return _encoder.encode(message).decode()


def error(code: ErrorCode, message: str, ref: str | None = None, **details: int) -> Error:
    return Error(code=code.value, message=message, ref=ref, **details)
