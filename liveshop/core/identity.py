"""Tokens: JWT (HS256) with claims `sub`, `role`, `room`, `exp` (PROTOCOL.md, Identity).

Pure: no I/O. Verifying a token yields an `Identity`; anonymous viewers have
no token at all. Room scoping (`room` claim versus the room joined) is checked here so
the socket and the REST API apply one rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt
import msgspec

from liveshop.core.errors import TokenError, TokenExpired, TokenForbidden


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is on the socket. Anonymous viewers have `user=None`."""

    role: Literal["viewer", "broadcaster", "staff", "hq"]
    user: str | None
    room: str

    @property
    def anonymous(self) -> bool:
        return self.user is None


ROLES = ("viewer", "broadcaster", "staff", "hq")
ALGORITHM = "HS256"


class Claims(msgspec.Struct, frozen=True):
    sub: str
    role: Literal["viewer", "broadcaster", "staff", "hq"]
    room: str
    exp: int


def issue(secret: str, *, user: str, role: str, room: str, ttl_s: int = 12 * 3600) -> str:
    """Sign a token for `user` as `role` in `room` (or `*` for every room)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    claims = {"sub": user, "role": role, "room": room, "exp": int(time.time()) + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str) -> Claims:
    """Check signature, expiry and claim shapes; raise TokenExpired or TokenError."""
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired("token expired") from None
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    try:
        return msgspec.convert(payload, Claims)
    except msgspec.ValidationError as exc:
        raise TokenError(f"invalid token claims: {exc}") from None


def identity_for_room(secret: str, token: str | None, room_id: str) -> Identity:
    """The identity of a socket in `room_id`; raises TokenError when the token may not enter."""
    if token is None:
        return Identity(role="viewer", user=None, room=room_id)
    claims = verify(secret, token)
    if claims.room not in ("*", room_id):
        raise TokenForbidden(f"token is for room {claims.room!r}, not {room_id!r}")
    return Identity(role=claims.role, user=claims.sub, room=room_id)


def may_manage_room(claims: Claims, room_id: str) -> bool:
    """HQ manages every room; a broadcaster manages the room its token names."""
    return claims.role == "hq" or (claims.role == "broadcaster" and claims.room in (room_id, "*"))
