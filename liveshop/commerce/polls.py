"""Polls in the live room (投票): the broadcaster asks, each signed-in viewer votes once.

Owns the room's `polls` hash (poll_id -> ends_at), each poll's hash (`<prefix>poll:<id>`:
question, options, counts, voters, the session it ran in), the `OPEN_POLLS` index and
the SQL table `poll_results` (a closed poll as it ended, for the session review:
written by the sweep before the poll leaves the index, so a crash in between only
repeats it). A vote is one script (the first vote of a user stands; the same vote again
is a no-op, another option is `already_voted`) and writes no message: every process's
sweep ticks the open polls twice a second (lua/polls_tick.lua), which puts the counts
on the room stream only when votes came in, and closes a poll once its time is up
(guarded: only if still open).
"""

from __future__ import annotations

import secrets
import time

import msgspec

from liveshop.commerce.coaching import winning_option
from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, Rejected
from liveshop.core.keys import OPEN_POLLS, RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.connections import AnyRedis
from liveshop.engine.database import Database, Migration
from liveshop.engine.scripts import Scripts

MIGRATIONS = [
    Migration(
        "polls",
        1,
        """
        CREATE TABLE IF NOT EXISTS poll_results (
            room_id     TEXT NOT NULL,
            poll_id     TEXT NOT NULL,
            session_id  TEXT NOT NULL,
            question    TEXT NOT NULL,
            options     TEXT NOT NULL,
            counts      TEXT NOT NULL,
            ends_at     BIGINT NOT NULL,
            closed_at   BIGINT NOT NULL,
            PRIMARY KEY (room_id, poll_id)
        );
        CREATE INDEX IF NOT EXISTS poll_results_session ON poll_results (session_id)
        """,
    ),
]

RECENT_MS = 10 * 60_000  # a closed poll stays in `welcome.state.polls` this long
MISSING_GRACE_MS = 60_000  # an index entry whose poll never got written is dropped after
_FIELDS = ("question", "options", "n", "ends_at", "status", "closed_at", "session")
_VOTE_REFUSALS = {
    "already_voted": (ErrorCode.ALREADY_VOTED, "you already voted in this poll"),
    "not_found": (ErrorCode.NOT_FOUND, "no such poll in this room"),
    "closed": (ErrorCode.NOT_FOUND, "this poll is closed"),
    "out_of_range": (ErrorCode.OUT_OF_RANGE, "no such option"),
}


def poll_key(room_id: str, poll_id: str) -> str:
    return f"{RoomKeys.of(room_id).prefix}poll:{poll_id}"


class PollResult(msgspec.Struct, frozen=True):
    """A closed poll as the session review shows it."""

    poll_id: str
    question: str
    options: list[str]
    counts: list[int]
    votes: int
    winner: int | None  # the index of the option with the most votes; None on a tie or none
    ends_at: int
    closed_at: int


class Polls:
    def __init__(self, redis: AnyRedis, scripts: Scripts, db: Database) -> None:
        self._redis = redis
        self._scripts = scripts
        self._db = db

    async def init_schema(self) -> None:
        await self._db.migrate(MIGRATIONS)

    async def start(self, room_id: str, msg: p.PollStart) -> str:
        poll_id = "p" + secrets.token_hex(6)
        keys = RoomKeys.of(room_id)
        ends_at = _now_ms() + msg.duration_s * 1000
        session, live = await self._redis.hmget(keys.room, ["session_id", "live"])
        # indexed first: a poll the sweep cannot find would never close
        await self._redis.zadd(OPEN_POLLS, {f"{room_id}|{poll_id}": ends_at})
        await self._scripts.polls_start(
            keys=[keys.polls, poll_key(room_id, poll_id), keys.seq, keys.history],
            args=[
                poll_id,
                msg.question,
                msgspec.json.encode(msg.options),
                len(msg.options),
                msg.duration_s,
                keys.channel,
                as_text(session) if session is not None and live == b"1" else "",
                poll_key(room_id, ""),
            ],
        )
        return poll_id

    async def vote(self, room_id: str, user: str, msg: p.Vote) -> None:
        reply = as_text(
            await self._scripts.polls_vote(
                keys=[poll_key(room_id, msg.poll_id)], args=[user, msg.option]
            )
        )
        if reply in _VOTE_REFUSALS:
            code, text = _VOTE_REFUSALS[reply]
            raise Rejected(code, text)

    async def for_room(self, room_id: str, poll_ids: list[str]) -> list[p.Poll]:
        """The polls `welcome.state.polls` shows of the room's (the snapshot's ids): open
        ones, and those closed lately."""
        out = []
        now = _now_ms()
        for poll_id in poll_ids:
            poll = await self.read(room_id, poll_id)
            if poll is not None and (poll[0].status == "open" or now - poll[1] <= RECENT_MS):
                out.append(poll[0])
        return out

    async def read(self, room_id: str, poll_id: str) -> tuple[p.Poll, int] | None:
        """A poll as its message shows it, and when it closed (0: open)."""
        found = await read_poll(self._redis, room_id, poll_id)
        return None if found is None else (found[0], found[1])

    async def sweep(self, _room_ids: list[str]) -> int:
        """The sweep's pass (every process): tick every open poll; returns those closed."""
        closed = 0
        now = _now_ms()
        rows = await self._redis.zrange(OPEN_POLLS, 0, -1, withscores=True)
        for row in rows:
            assert isinstance(row, tuple | list)  # (member, score) with withscores
            entry, ends_at = as_text(row[0]), float(row[1])
            room_id, _, poll_id = entry.partition("|")
            keys = RoomKeys.of(room_id)
            state = as_text(
                await self._scripts.polls_tick(
                    keys=[poll_key(room_id, poll_id), keys.seq, keys.history],
                    args=[poll_id, keys.channel],
                )
            )
            if state == "missing" and now - ends_at < MISSING_GRACE_MS:
                continue  # being started right now
            if state != "open":
                if state == "closed":
                    closed += 1
                    await self._keep_result(room_id, poll_id)
                await self._redis.zrem(OPEN_POLLS, entry)
        return closed

    async def _keep_result(self, room_id: str, poll_id: str) -> None:
        found = await read_poll(self._redis, room_id, poll_id)
        if found is None or found[0].status != "closed" or not found[2]:
            return  # gone, or not run in a live session: no review to be in
        poll, closed_at, session_id = found
        await self._db.execute(
            "INSERT INTO poll_results (room_id, poll_id, session_id, question, options, "
            "counts, ends_at, closed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (room_id, poll_id) DO NOTHING",
            (
                room_id,
                poll_id,
                session_id,
                poll.question,
                msgspec.json.encode(poll.options).decode(),
                msgspec.json.encode(poll.counts).decode(),
                poll.ends_at,
                closed_at,
            ),
        )


async def session_polls(db: Database, session_id: str) -> list[PollResult]:
    """The polls of one session, as they closed, in the order they ended (pure read)."""
    rows = await db.fetch(
        "SELECT poll_id, question, options, counts, ends_at, closed_at FROM poll_results "
        "WHERE session_id = $1 ORDER BY ends_at, poll_id",
        (session_id,),
    )
    out = []
    for poll_id, question, options, counts, ends_at, closed_at in rows:
        tally = msgspec.json.decode(str(counts), type=list[int])
        out.append(
            PollResult(
                poll_id=str(poll_id),
                question=str(question),
                options=msgspec.json.decode(str(options), type=list[str]),
                counts=tally,
                votes=sum(tally),
                winner=winning_option(tally),
                ends_at=int(str(ends_at)),
                closed_at=int(str(closed_at)),
            )
        )
    return out


async def read_poll(redis: AnyRedis, room_id: str, poll_id: str) -> tuple[p.Poll, int, str] | None:
    """A poll as its message shows it, when it closed (0: open) and the live session it
    ran in ('' when the room was not live)."""
    key = poll_key(room_id, poll_id)
    fields = await redis.hmget(key, [*_FIELDS, *(f"c{i}" for i in range(6))])
    if fields[0] is None:
        return None
    question, options, n, ends_at, status, closed_at, session = (
        as_text(f) if f is not None else "" for f in fields[:7]
    )
    counts = [int(c or 0) for c in fields[7 : 7 + int(n)]]
    poll = p.Poll(
        poll_id=poll_id,
        question=question,
        options=msgspec.json.decode(options, type=list[str]),
        counts=counts,
        ends_at=int(ends_at),
        status="closed" if status == "closed" else "open",
    )
    return poll, int(closed_at or 0), session


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
