"""Lucky draws (福袋): a prize, a number of winners, a deadline and who may enter (all,
who chatted this session, who bought this session); winners anyone can check.

At the start the server draws 32 random bytes (the seed) and publishes only their
SHA-256 (`commitment`); at the deadline it reveals the seed and the winners, which are
`winners(seed, entrants, k)`: a pure function of the seed and the sorted entrant ids
(docs/protocol.md has it as a 20-line verifier). Owns the room's `draws` hash, each
draw's hash and entrants set (`<prefix>draw:<id>`, `…:entrants`), `OPEN_DRAWS` and the
SQL table `draw_results` (a drawn draw with its seed and sorted entrants, for the session
review and for checking it later: written by the sweep before the draw leaves the index). An
entry is one script (eligibility checked there; a repeat is a no-op); every process's
sweep ticks the open draws: the entrant count on the stream when it moved, and at the
deadline the draw is closed to entrants, drawn and revealed once (lua/draws_tick.lua,
draws_finish.lua: every process computes the same winners, one reveals them).
"""

from __future__ import annotations

import hashlib
import secrets
import time

import msgspec

from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, Rejected
from liveshop.core.keys import OPEN_DRAWS, RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.connections import AnyRedis
from liveshop.engine.database import Database, Migration
from liveshop.engine.scripts import Scripts

MIGRATIONS = [
    Migration(
        "draws",
        1,
        """
        CREATE TABLE IF NOT EXISTS draw_results (
            room_id        TEXT NOT NULL,
            draw_id        TEXT NOT NULL,
            session_id     TEXT NOT NULL,
            prize          TEXT NOT NULL,
            winners_count  INTEGER NOT NULL,
            eligible       TEXT NOT NULL,
            commitment     TEXT NOT NULL,
            seed           TEXT NOT NULL,
            winners        TEXT NOT NULL,
            entrants       TEXT NOT NULL,
            ends_at        BIGINT NOT NULL,
            drawn_at       BIGINT NOT NULL,
            PRIMARY KEY (room_id, draw_id)
        );
        CREATE INDEX IF NOT EXISTS draw_results_session ON draw_results (session_id)
        """,
    ),
]

RECENT_MS = 10 * 60_000
MISSING_GRACE_MS = 60_000
_FIELDS = ("prize", "winners_count", "entrants", "ends_at", "status", "commitment")
_MORE = ("eligible", "seed", "winners", "drawn_at", "session")
_ENTER_REFUSALS = {
    "not_found": (ErrorCode.NOT_FOUND, "no such draw in this room"),
    "closed": (ErrorCode.NOT_FOUND, "this draw is closed"),
    "not_eligible": (ErrorCode.FORBIDDEN, "this draw is for viewers who chatted or bought"),
}


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def winners(seed: bytes, entrants: list[str], k: int) -> list[str]:
    """The draw's winners: each entrant's ticket is SHA-256(seed || UTF-8 id), the `k`
    smallest tickets win (ties, impossible in practice, by id), in ticket order. Depends
    only on the seed and the set of entrants (sorted first), so anyone can recompute it."""
    tickets = sorted(
        (hashlib.sha256(seed + user.encode()).hexdigest(), user) for user in sorted(entrants)
    )
    return [user for _ticket, user in tickets[:k]]


def draw_key(room_id: str, draw_id: str) -> str:
    return f"{RoomKeys.of(room_id).prefix}draw:{draw_id}"


class DrawResult(msgspec.Struct, frozen=True):
    """A drawn draw as the session review shows it; `entrants` is how many entered (the
    sorted ids are at `GET /api/rooms/{room}/draws/{draw_id}`)."""

    draw_id: str
    prize: str
    winners_count: int
    eligible: str
    entrants: int
    commitment: str
    seed: str
    winners: list[str]
    ends_at: int
    drawn_at: int


class Draws:
    def __init__(self, redis: AnyRedis, scripts: Scripts, db: Database) -> None:
        self._redis = redis
        self._scripts = scripts
        self._db = db

    async def init_schema(self) -> None:
        await self._db.migrate(MIGRATIONS)

    async def start(self, room_id: str, msg: p.DrawStart) -> str:
        draw_id = "d" + secrets.token_hex(6)
        seed = secrets.token_bytes(32)
        keys = RoomKeys.of(room_id)
        session = await self._redis.hget(keys.room, "session_id")
        live = await self._redis.hget(keys.room, "live") == b"1"
        await self._redis.zadd(
            OPEN_DRAWS, {f"{room_id}|{draw_id}": _now_ms() + msg.duration_s * 1000}
        )
        await self._scripts.draws_start(
            keys=[keys.draws, draw_key(room_id, draw_id), keys.seq, keys.history],
            args=[
                draw_id,
                msg.prize,
                msg.winners,
                msg.duration_s,
                msg.eligible,
                seed.hex(),
                commitment(seed),
                keys.channel,
                as_text(session) if session is not None and live else "",
                draw_key(room_id, ""),
            ],
        )
        return draw_id

    async def enter(self, room_id: str, user: str, msg: p.DrawEnter) -> None:
        keys = RoomKeys.of(room_id)
        key = draw_key(room_id, msg.draw_id)
        reply = as_text(
            await self._scripts.draws_enter(
                keys=[key, f"{key}:entrants", keys.buyers], args=[user, keys.prefix]
            )
        )
        if reply in _ENTER_REFUSALS:
            code, text = _ENTER_REFUSALS[reply]
            raise Rejected(code, text)

    async def drawn(self, room_id: str, draw_id: str) -> tuple[p.Draw, list[str]] | None:
        """A drawn draw and its entrants, sorted (what a verifier needs): from the engine
        while its keys live, then from `draw_results`; None before it is drawn."""
        found = await self.read(room_id, draw_id)
        if found is not None and found[0].status == "drawn":
            key = draw_key(room_id, draw_id)
            entrants = sorted(as_text(u) for u in await self._redis.smembers(f"{key}:entrants"))
            return found[0], entrants
        return await self.stored(room_id, draw_id) if found is None else None

    async def for_room(self, room_id: str, draw_ids: list[str]) -> list[p.Draw]:
        """The draws `welcome.state.draws` shows of the room's (the snapshot's ids)."""
        out = []
        now = _now_ms()
        for draw_id in draw_ids:
            found = await self.read(room_id, draw_id)
            if found is not None and (found[0].status == "open" or now - found[1] <= RECENT_MS):
                out.append(found[0])
        return out

    async def read(self, room_id: str, draw_id: str) -> tuple[p.Draw, int] | None:
        """A draw as its message shows it, and when it was drawn (0: not yet)."""
        found = await self._read(room_id, draw_id)
        return None if found is None else (found[0], found[1])

    async def _read(self, room_id: str, draw_id: str) -> tuple[p.Draw, int, str] | None:
        raw = await self._redis.hmget(draw_key(room_id, draw_id), [*_FIELDS, *_MORE])
        if raw[0] is None:
            return None
        f = [as_text(v) if v is not None else "" for v in raw]
        prize, count, entrants, ends_at, status, commit, eligible, seed, won, drawn_at, sid = f
        drawn = status == "drawn"
        draw = p.Draw(
            draw_id=draw_id,
            prize=prize,
            winners_count=int(count),
            entrants=int(entrants),
            ends_at=int(ends_at),
            status="drawn" if drawn else "open",
            commitment=commit,
            eligible=eligible,
            seed=seed if drawn else None,
            winners=msgspec.json.decode(won, type=list[str]) if drawn else None,
        )
        return draw, int(drawn_at or 0), sid

    async def sweep(self, _room_ids: list[str]) -> int:
        """The sweep's pass (every process): tick every open draw; returns those drawn."""
        drawn = 0
        now = _now_ms()
        for row in await self._redis.zrange(OPEN_DRAWS, 0, -1, withscores=True):
            assert isinstance(row, tuple | list)  # (member, score) with withscores
            entry, ends_at = as_text(row[0]), float(row[1])
            room_id, _, draw_id = entry.partition("|")
            keys = RoomKeys.of(room_id)
            key = draw_key(room_id, draw_id)
            reply = await self._scripts.draws_tick(
                keys=[key, f"{key}:entrants", keys.seq, keys.history],
                args=[draw_id, keys.channel],
            )
            state = as_text(reply[0])
            if state == "open" or (state == "missing" and now - ends_at < MISSING_GRACE_MS):
                continue
            if state == "due":
                seed, k, entrants = bytes.fromhex(as_text(reply[1])), int(reply[2]), reply[3]
                chosen = winners(seed, [as_text(e) for e in entrants], k)
                done = await self._scripts.draws_finish(
                    keys=[key, keys.seq, keys.history],
                    args=[draw_id, msgspec.json.encode(chosen), keys.channel],
                )
                drawn += int(as_text(done) == "ok")
                state = "drawn"
            if state == "drawn":
                await self._keep_result(room_id, draw_id)
            await self._redis.zrem(OPEN_DRAWS, entry)
        return drawn

    async def stored(self, room_id: str, draw_id: str) -> tuple[p.Draw, list[str]] | None:
        """A drawn draw and its sorted entrants from `draw_results`: how it is checked
        once its keys in the engine have expired."""
        rows = await self._db.fetch(
            "SELECT prize, winners_count, eligible, commitment, seed, winners, entrants, "
            "ends_at FROM draw_results WHERE room_id = $1 AND draw_id = $2",
            (room_id, draw_id),
        )
        if not rows:
            return None
        prize, k, eligible, commit, seed, won, entrants_json, ends_at = rows[0]
        entrants = msgspec.json.decode(str(entrants_json), type=list[str])
        draw = p.Draw(
            draw_id=draw_id,
            prize=str(prize),
            winners_count=int(str(k)),
            entrants=len(entrants),
            ends_at=int(str(ends_at)),
            status="drawn",
            commitment=str(commit),
            eligible=str(eligible),
            seed=str(seed),
            winners=msgspec.json.decode(str(won), type=list[str]),
        )
        return draw, entrants

    async def _keep_result(self, room_id: str, draw_id: str) -> None:
        found = await self._read(room_id, draw_id)
        if found is None or found[0].status != "drawn":
            return  # gone (kept already: its keys expire a week after it left the list)
        draw, drawn_at, session_id = found
        key = draw_key(room_id, draw_id)
        entrants = sorted(as_text(u) for u in await self._redis.smembers(f"{key}:entrants"))
        await self._db.execute(
            "INSERT INTO draw_results (room_id, draw_id, session_id, prize, winners_count, "
            "eligible, commitment, seed, winners, entrants, ends_at, drawn_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
            "ON CONFLICT (room_id, draw_id) DO NOTHING",
            (
                room_id,
                draw_id,
                session_id,
                draw.prize,
                draw.winners_count,
                draw.eligible,
                draw.commitment,
                draw.seed or "",
                msgspec.json.encode(draw.winners or []).decode(),
                msgspec.json.encode(entrants).decode(),
                draw.ends_at,
                drawn_at,
            ),
        )


async def session_draws(db: Database, session_id: str) -> list[DrawResult]:
    """The draws of one session, as drawn, in the order they ended."""
    rows = await db.fetch(
        "SELECT draw_id, prize, winners_count, eligible, entrants, commitment, seed, winners, "
        "ends_at, drawn_at FROM draw_results WHERE session_id = $1 ORDER BY ends_at, draw_id",
        (session_id,),
    )
    return [
        DrawResult(
            draw_id=str(draw_id),
            prize=str(prize),
            winners_count=int(str(k)),
            eligible=str(eligible),
            entrants=len(msgspec.json.decode(str(entrants), type=list[str])),
            commitment=str(commit),
            seed=str(seed),
            winners=msgspec.json.decode(str(won), type=list[str]),
            ends_at=int(str(ends_at)),
            drawn_at=int(str(drawn_at)),
        )
        for draw_id, prize, k, eligible, entrants, commit, seed, won, ends_at, drawn_at in rows
    ]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
