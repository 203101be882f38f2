"""Moderation: mutes, kicks, bans, slow mode, moderators, blocked words and the audit
log of a room, enforced by the server on every message in every process.

Owns the room's `mod` hash, `words` set and `mod_log` stream (lua/moderation_act.lua
decides and writes an action; lua/moderation_chat.lua lets a chat through only if the
hash says the user may speak now, in the same step as the write) and the chain's word
list (`CHAIN_WORDS`, HQ's). Every process holds one `WordFilter` per room it serves,
rebuilt when the chat script says the room list's version moved (so a change applies to
the very next message), and one for the chain's list, whose version is read at most once
a second. A kick or ban reaches the user's sockets on every process as a `moderation`
message (the hub closes them, `bye` + 4410); a reconnect inside the window is refused at
hello, also from another identity on the same device (the `ls_device` cookie and the
address). Mutes and kicks never touch buying.
"""

from __future__ import annotations

import hashlib
import time

import msgspec

from liveshop.commerce.word_filter import WordFilter
from liveshop.core import protocol as p
from liveshop.core.errors import ByeReason, ErrorCode, Rejected
from liveshop.core.keys import CHAIN_WORDS, CHAIN_WORDS_VERSION, RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.connections import AnyRedis
from liveshop.engine.scripts import Scripts

MUTE_S = (10, 604_800)
KICK_S = (60, 86_400)
SLOW_S = (3, 120)  # or 0: off
ROOM_WORDS_MAX = 500
CHAIN_WORDS_MAX = 5_000
CHAIN_REFRESH_S = 1.0  # a chain list change applies within this long
_NEEDS_USER = frozenset(("mute", "unmute", "kick", "ban", "unban", "appoint", "dismiss"))


def refusal(msg: p.Mod) -> str | None:
    """Why `msg` cannot be carried out whatever the room's state (a protocol error
    code), or None. Pure: the ranges and the fields each action needs."""
    if msg.action in _NEEDS_USER and not msg.user:
        return ErrorCode.BAD_MESSAGE.value
    if msg.action == "delete" and not (msg.msg_id and msg.msg_id.isdigit()):
        return ErrorCode.BAD_MESSAGE.value
    if msg.action in ("words_add", "words_remove") and not msg.words:
        return ErrorCode.BAD_MESSAGE.value
    seconds = msg.seconds
    if msg.action in ("mute", "kick", "slow") and seconds is None:
        return ErrorCode.BAD_MESSAGE.value
    if seconds is not None:
        low, high = {"mute": MUTE_S, "kick": KICK_S, "slow": SLOW_S}.get(msg.action, (0, 0))
        if not (low <= seconds <= high or (msg.action == "slow" and seconds == 0)):
            return ErrorCode.OUT_OF_RANGE.value
    return None


def device_key(cookie: str | None, ip: str) -> str | None:
    """A device as moderation remembers it: the `ls_device` cookie with the address
    (a cookie alone is shared by copying it; an address alone by a whole building)."""
    if not cookie:
        return None
    return hashlib.sha256(f"{cookie}|{ip}".encode()).hexdigest()[:24]


def device_cookie(header: str | None) -> str | None:
    """The `ls_device` cookie of a Cookie header."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "ls_device" and 8 <= len(value) <= 64:
            return value
    return None


class LogEntry(msgspec.Struct, frozen=True):
    at: int
    actor: str
    action: str
    user: str
    msg_id: str
    seconds: str
    reason: str
    words: list[str]


class Admission(msgspec.Struct, frozen=True):
    """What moderation says about a socket at hello: refused (`bye`), and the slow mode."""

    refused: ByeReason | None
    slow_s: int


class Moderation:
    def __init__(self, redis: AnyRedis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts
        self._rooms: dict[str, tuple[str, WordFilter]] = {}  # room -> (version, filter)
        self._chain: tuple[str, WordFilter] = ("", WordFilter(()))
        self._chain_checked = -CHAIN_REFRESH_S

    # -- actions -----------------------------------------------------------------

    async def act(self, room_id: str, actor: str, host: bool, msg: p.Mod) -> p.ModAck:
        why = refusal(msg)
        if why is None:
            keys = RoomKeys.of(room_id)
            reply = await self._scripts.moderation_act(
                keys=[keys.mod, keys.words, keys.mod_log, keys.seq, keys.history, keys.removed],
                args=[
                    msg.action,
                    actor,
                    "1" if host else "0",
                    msg.user or "",
                    msg.msg_id or "",
                    msg.seconds if msg.seconds is not None else "",
                    msg.reason or "",
                    keys.channel,
                    *(msg.words or ()),
                ],
            )
            why = None if as_text(reply) == "ok" else as_text(reply)
        return p.ModAck(
            request_id=msg.request_id, status="ok" if why is None else "refused", reason=why
        )

    async def log(self, room_id: str, limit: int = 200) -> list[LogEntry]:
        """The room's moderation actions, newest first."""
        rows = await self._redis.xrevrange(RoomKeys.of(room_id).mod_log, count=limit)
        out = []
        for _id, fields in rows or ():
            f = {as_text(k): as_text(v) for k, v in (fields or {}).items()}
            out.append(
                LogEntry(
                    at=int(f.get("at", "0")),
                    actor=f.get("actor", ""),
                    action=f.get("action", ""),
                    user=f.get("user", ""),
                    msg_id=f.get("msg_id", ""),
                    seconds=f.get("seconds", ""),
                    reason=f.get("reason", ""),
                    words=[w for w in f.get("words", "").split("\n") if w],
                )
            )
        return out

    # -- sockets -----------------------------------------------------------------

    async def admission(self, room_id: str, user: str | None, device: str | None) -> Admission:
        """One read at hello: a banned user, or a user or device kicked until later, is
        refused; else the room's slow mode for `welcome.state.chat`."""
        fields = ["slow", f"ban:{user}", f"kick:{user}", f"dev:{device}"]
        slow, banned, kicked, seen = await self._redis.hmget(RoomKeys.of(room_id).mod, fields)
        now = _now_ms()
        refused: ByeReason | None = None
        if user is not None and banned is not None:
            refused = ByeReason.BANNED
        elif user is not None and kicked is not None and int(kicked) > now:
            refused = ByeReason.KICKED
        elif device is not None and seen is not None:
            until, action, _user = as_text(seen).split("|", 2)
            if action == "ban" or int(until) > now:
                refused = ByeReason.BANNED if action == "ban" else ByeReason.KICKED
        return Admission(refused=refused, slow_s=int(slow or 0))

    async def remember_device(
        self, room_id: str, device: str, action: str, until: int, user: str
    ) -> None:
        """A kicked or banned user's device, refused for the same window."""
        await self._redis.hset(
            RoomKeys.of(room_id).mod, f"dev:{device}", f"{until}|{action}|{user}"
        )

    # -- chat --------------------------------------------------------------------

    async def chat(self, room_id: str, user: str, text: str, host: bool) -> ByeReason | None:
        """Put a chat on the room stream, or refuse it (`Rejected`: blocked_word, muted,
        rate_limited). A kicked or banned user's socket is sent away (the reason)."""
        keys = RoomKeys.of(room_id)
        body = msgspec.json.encode({"type": "chat", "user": user, "text": text})[:-1]
        for _attempt in range(3):
            version, words = self._rooms.get(room_id, ("", None))
            chain = await self._chain_filter()
            term = chain.find(text) or (words.find(text) if words is not None else None)
            if term is not None:
                raise Rejected(ErrorCode.BLOCKED_WORD, "this message contains a blocked word")
            reply = await self._scripts.moderation_chat(
                keys=[keys.seq, keys.history, keys.mod, keys.room],
                args=[
                    body,
                    user,
                    "1" if host else "0",
                    keys.channel,
                    version or "0",
                    keys.prefix,
                ],
            )
            outcome = as_text(reply[0])
            if outcome == "ok":
                return None
            if outcome == "stale":
                await self._load_room_words(room_id)
                continue
            return _chat_refused(outcome, int(reply[1]) if len(reply) > 1 else 0)
        raise Rejected(ErrorCode.UNAVAILABLE, "the word list is changing, retry")

    async def _load_room_words(self, room_id: str) -> None:
        keys = RoomKeys.of(room_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.mod, "words_v")
            pipe.smembers(keys.words)
            version, members = await pipe.execute()
        terms = sorted(as_text(t) for t in members)
        self._rooms[room_id] = (as_text(version) if version else "0", WordFilter(terms))

    async def _chain_filter(self) -> WordFilter:
        now = time.monotonic()
        if now - self._chain_checked >= CHAIN_REFRESH_S:
            self._chain_checked = now
            version = as_text(await self._redis.get(CHAIN_WORDS_VERSION) or b"0")
            if version != self._chain[0]:
                terms = sorted(as_text(t) for t in await self._redis.smembers(CHAIN_WORDS))
                self._chain = (version, WordFilter(terms))
        return self._chain[1]

    def forget(self, room_id: str) -> None:
        """This process has no socket left in the room: its filter can go."""
        self._rooms.pop(room_id, None)

    # -- the chain's list (HQ) ------------------------------------------------------

    async def room_words(self, room_id: str) -> list[str]:
        return sorted(as_text(t) for t in await self._redis.smembers(RoomKeys.of(room_id).words))

    async def chain_words(self) -> list[str]:
        return sorted(as_text(t) for t in await self._redis.smembers(CHAIN_WORDS))

    async def put_chain_words(self, words: list[str]) -> int:
        """Replace HQ's list; every process uses it within `CHAIN_REFRESH_S`."""
        if len(words) > CHAIN_WORDS_MAX:
            raise Rejected(ErrorCode.OUT_OF_RANGE, f"at most {CHAIN_WORDS_MAX} words")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(CHAIN_WORDS)
            if words:
                pipe.sadd(CHAIN_WORDS, *words)
            pipe.incr(CHAIN_WORDS_VERSION)
            await pipe.execute()
        return len(set(words))


def _chat_refused(outcome: str, until: int) -> ByeReason:
    if outcome == "muted":
        raise Rejected(ErrorCode.MUTED, "you are muted in this room", until=until)
    if outcome == "slow":
        raise Rejected(
            ErrorCode.RATE_LIMITED, "slow mode: wait before the next message", until=until
        )
    return ByeReason.BANNED if outcome == "banned" else ByeReason.KICKED


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
