"""Wire error codes, `bye` reasons, close codes and the exception tree.

Base module: imports nothing else from liveshop. Every error a client can see is
named here, so the protocol docs and the code cannot drift apart.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """`error.code` values (PROTOCOL.md)."""

    NOT_READY = "not_ready"
    TOO_LARGE = "too_large"
    BAD_MESSAGE = "bad_message"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    UNKNOWN_ROOM = "unknown_room"
    NOT_FOUND = "not_found"  # REST: the named thing (offer, connection) does not exist
    # v1.1 (orders after the tap, groups, HQ, moderation)
    ILLEGAL_TRANSITION = "illegal_transition"
    TOO_MANY_UNPAID = "too_many_unpaid"
    OUT_OF_RANGE = "out_of_range"
    PRICE_OUT_OF_BAND = "price_out_of_band"
    MUTED = "muted"
    BLOCKED_WORD = "blocked_word"
    ALREADY_VOTED = "already_voted"
    LOCKED = "locked"
    AMOUNT_MISMATCH = "amount_mismatch"
    UNDO_EXPIRED = "undo_expired"
    ALREADY_VERIFIED = "already_verified"


class ByeReason(StrEnum):
    """`bye.reason` values: sent right before the server closes the socket."""

    HELLO_TIMEOUT = "hello_timeout"
    PROTOCOL_VIOLATION = "protocol_violation"
    UNKNOWN_ROOM = "unknown_room"
    FORBIDDEN = "forbidden"
    UNAUTHORIZED = "unauthorized"
    TOKEN_EXPIRED = "token_expired"
    SLOW_CONSUMER = "slow_consumer"
    FLOODING = "flooding"
    SERVER_SHUTDOWN = "server_shutdown"
    RESYNC = "resync"  # this server lost part of the room stream: reconnect with resume_from
    KICKED = "kicked"  # v1.1 moderation: refused until the kick's window ends
    BANNED = "banned"


class CloseCode(IntEnum):
    """Websocket close codes. 1xxx are RFC 6455; 4xxx are liveshop's own, modelled on HTTP."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutdown: reconnect elsewhere
    TRY_AGAIN_LATER = 1013
    MESSAGE_TOO_BIG = 1009
    PROTOCOL_VIOLATION = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    UNKNOWN_ROOM = 4404
    HELLO_TIMEOUT = 4408
    REMOVED = 4410  # kicked or banned (v1.1): like HTTP 410, do not come back now
    FLOODING = 4429
    SLOW_CONSUMER = 4508


BYE_CLOSE_CODES: dict[ByeReason, CloseCode] = {
    ByeReason.HELLO_TIMEOUT: CloseCode.HELLO_TIMEOUT,
    ByeReason.PROTOCOL_VIOLATION: CloseCode.PROTOCOL_VIOLATION,
    ByeReason.UNKNOWN_ROOM: CloseCode.UNKNOWN_ROOM,
    ByeReason.FORBIDDEN: CloseCode.FORBIDDEN,
    ByeReason.UNAUTHORIZED: CloseCode.UNAUTHORIZED,
    ByeReason.TOKEN_EXPIRED: CloseCode.UNAUTHORIZED,
    ByeReason.SLOW_CONSUMER: CloseCode.SLOW_CONSUMER,
    ByeReason.FLOODING: CloseCode.FLOODING,
    ByeReason.SERVER_SHUTDOWN: CloseCode.GOING_AWAY,
    ByeReason.RESYNC: CloseCode.TRY_AGAIN_LATER,
    ByeReason.KICKED: CloseCode.REMOVED,
    ByeReason.BANNED: CloseCode.REMOVED,
}


class LiveshopError(Exception):
    """Base of every error liveshop raises on purpose."""


class ConfigError(LiveshopError):
    """A `LIVESHOP_*` setting is missing or invalid; the message names the variable."""


class TokenError(LiveshopError):
    """A token could not be accepted."""

    reason = ByeReason.UNAUTHORIZED


class TokenExpired(TokenError):
    reason = ByeReason.TOKEN_EXPIRED


class TokenForbidden(TokenError):
    """A valid token that does not open this room (e.g. another store's broadcaster)."""

    reason = ByeReason.FORBIDDEN


class EngineError(LiveshopError):
    """The embedded engine could not be started, reused or stopped."""


class Rejected(LiveshopError):
    """A request was understood but refused; carries a wire error code and, for some
    codes, details the answer carries as fields (`price_out_of_band`: floor, ceiling)."""

    def __init__(self, code: ErrorCode, message: str, **details: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class OutOfBand(Rejected):
    """A price outside the band HQ set for the room and SKU."""

    def __init__(self, sku: str, price: int, floor: int, ceiling: int) -> None:
        super().__init__(
            ErrorCode.PRICE_OUT_OF_BAND,
            f"price {price} of {sku!r} is outside HQ's band {floor}–{ceiling}",
            floor=floor,
            ceiling=ceiling,
        )
