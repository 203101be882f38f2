"""Per-connection protocol state machine: frames in, decisions out, no I/O.

Owns the hello handshake phase, frame-size and validation errors, strike counting
(three bad messages in a row or 20 a minute end the connection), the inbound token
bucket and role checks. It never awaits and never touches a socket or Redis: the
gateway feeds it frames with a clock reading and carries out what it decides.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass

from liveshop.core import protocol as p
from liveshop.core.errors import BYE_CLOSE_CODES, ByeReason, CloseCode, ErrorCode, Rejected
from liveshop.core.identity import Identity
from liveshop.core.ratelimit import TokenBucket

STRIKES_IN_A_ROW = 3
STRIKES_PER_MINUTE = 20


class Phase(enum.Enum):
    AWAITING_HELLO = "awaiting_hello"
    GREETING = "greeting"  # hello accepted, welcome not yet sent
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Handle:
    """Act on this valid, permitted message."""

    message: p.ClientMessage


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the client with this message; the connection stays open."""

    message: p.Error


@dataclass(frozen=True, slots=True)
class Close:
    """Send `message` (an error or a bye) if any, then close with `code`."""

    code: int
    message: p.Error | p.Bye | None = None


Decision = Handle | Reply | Close


class IllegalTransition(RuntimeError):
    """The gateway drove the state machine out of order (a bug, not bad input)."""


class ConnectionState:
    """The protocol rules for one client connection."""

    def __init__(
        self,
        room_id: str,
        now: float,
        *,
        msg_rate: float = 20.0,
        msg_burst: float = 50.0,
        flood_limit: int = 100,
    ) -> None:
        self.room_id = room_id
        self.phase = Phase.AWAITING_HELLO
        self.identity: Identity | None = None
        self.lang: p.Lang = "zh-CN"
        self._bad_in_a_row = 0
        self._bad_times: list[float] = []  # a list: a deque costs 760 bytes per socket
        self._bucket = TokenBucket(msg_rate, msg_burst, now)
        self._limited_in_a_row = 0
        self._flood_limit = flood_limit

    # -- transitions driven by the gateway ---------------------------------------

    def _expect(self, *phases: Phase) -> None:
        if self.phase not in phases:
            expected = " or ".join(ph.value for ph in phases)
            raise IllegalTransition(f"expected phase {expected}, connection is {self.phase.value}")

    def greeted(self, identity: Identity) -> None:
        """The gateway accepted the hello's token; the welcome is being prepared."""
        self._expect(Phase.GREETING)
        self.identity = identity

    def welcomed(self) -> None:
        self._expect(Phase.GREETING)
        self.phase = Phase.READY

    def closed(self) -> None:
        self.phase = Phase.CLOSED

    # -- inbound frames --------------------------------------------------------------

    def receive(self, data: str | bytes, now: float) -> Decision:
        """Decide what to do with one inbound frame."""
        if self.phase is Phase.CLOSED:
            raise IllegalTransition("frame received on a closed connection")
        size = len(data.encode()) if isinstance(data, str) else len(data)
        if size > p.MAX_FRAME_BYTES:
            self.phase = Phase.CLOSED
            return Close(
                CloseCode.MESSAGE_TOO_BIG,
                p.error(ErrorCode.TOO_LARGE, f"frame of {size} bytes exceeds 4096"),
            )
        if not self._bucket.take(now):
            self._limited_in_a_row += 1
            if self._limited_in_a_row >= self._flood_limit:
                return self._bye(ByeReason.FLOODING)
            return Reply(p.error(ErrorCode.RATE_LIMITED, "too many messages, slow down"))
        self._limited_in_a_row = 0

        decoded = p.decode_client(data)
        if isinstance(decoded, p.DecodeFailure):
            return self._strike(now, decoded.message)
        self._bad_in_a_row = 0

        if self.phase is Phase.AWAITING_HELLO:
            if isinstance(decoded, p.Hello):
                self.phase = Phase.GREETING
                self.lang = decoded.lang
                return Handle(decoded)
            return Reply(p.error(ErrorCode.NOT_READY, "send hello first"))
        if self.phase is Phase.GREETING:
            return Reply(p.error(ErrorCode.NOT_READY, "wait for welcome"))
        if isinstance(decoded, p.Hello):
            return Reply(p.error(ErrorCode.BAD_MESSAGE, "hello was already received"))
        return self._authorize(decoded)

    def _authorize(self, message: p.ClientMessage) -> Decision:
        identity = self.identity
        assert identity is not None  # READY implies greeted
        if isinstance(message, p.VIEWER_ACTIONS) and identity.anonymous:
            return Reply(p.error(ErrorCode.UNAUTHORIZED, "sign in to buy, chat or like"))
        if isinstance(message, p.BROADCASTER_ACTIONS) and identity.role not in (
            "broadcaster",
            "hq",
        ):
            return Reply(p.error(ErrorCode.FORBIDDEN, "only the room's broadcaster may do this"))
        return Handle(message)

    def _strike(self, now: float, message: str) -> Decision:
        self._bad_in_a_row += 1
        self._bad_times = [t for t in self._bad_times if now - t <= 60.0]
        self._bad_times.append(now)
        if self._bad_in_a_row >= STRIKES_IN_A_ROW or len(self._bad_times) >= STRIKES_PER_MINUTE:
            return self._bye(ByeReason.PROTOCOL_VIOLATION)
        return Reply(p.error(ErrorCode.BAD_MESSAGE, message))

    def _bye(self, reason: ByeReason) -> Close:
        self.phase = Phase.CLOSED
        return Close(BYE_CLOSE_CODES[reason], p.Bye(reason=reason.value))


CHAT_EVERY_S = 2.0  # one chat message per user and room every 2 s
LIKES_PER_S = 10.0  # likes per user and room, with a burst of as many
_BOUND = 50_000  # entries kept per rule before the stale ones are forgotten


def has_control_chars(text: str) -> bool:
    """Control or format characters, but the zero-width joiner emoji sequences use."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") and ch != "\u200d" for ch in text)


class InteractionRules:
    """The chat and like limits of this process, per (room, user), across the user's
    sockets here. Pure: fed a monotonic clock reading; raises `Rejected` with the
    protocol's code. Memory stays bounded over a long evening."""

    def __init__(self) -> None:
        self._chat_times: dict[tuple[str, str], float] = {}
        self._likes: dict[tuple[str, str], TokenBucket] = {}

    def chat(self, room_id: str, user: str, text: str, now: float) -> str:
        """The text to post (trimmed), or Rejected."""
        text = text.strip()
        if not text or has_control_chars(text):
            raise Rejected(ErrorCode.BAD_MESSAGE, "chat text is empty or has control characters")
        key = (room_id, user)
        if now - self._chat_times.get(key, -CHAT_EVERY_S) < CHAT_EVERY_S:
            raise Rejected(ErrorCode.RATE_LIMITED, "one chat message every 2 seconds")
        if len(self._chat_times) > _BOUND:
            self._chat_times = {k: t for k, t in self._chat_times.items() if now - t < CHAT_EVERY_S}
        self._chat_times[key] = now
        return text

    def like(self, room_id: str, user: str, now: float) -> None:
        key = (room_id, user)
        bucket = self._likes.get(key)
        if bucket is None:
            if len(self._likes) > _BOUND:  # a full bucket is as good as a new one
                self._likes = {k: b for k, b in self._likes.items() if now - b.updated < 1.0}
            bucket = self._likes[key] = TokenBucket(LIKES_PER_S, LIKES_PER_S, now)
        if not bucket.take(now):
            raise Rejected(ErrorCode.RATE_LIMITED, "at most 10 likes a second")
