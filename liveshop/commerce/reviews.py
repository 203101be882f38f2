"""The post-live review (复盘): one session's figures from the database, compared with the
store's previous sessions and the chain.

Owns the SQL tables `session_minutes`, `session_offers`, `session_groups` and
`session_hints`: what the engine knew of a session and the orders table does not (peak
viewers per minute, the offers and groups as they stood at the end, the hints fired),
stored once at `end_live` from the close script's own reply (so a go-live right after
cannot reset them first). Everything else comes from `orders` and `sessions`, and the
polls and draws of the session from their own tables (`polls.session_polls`,
`draws.session_draws`: kept as each one closed, which may be after the end). The
figures are one pure function, `build()`, of those rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TypeVar

import msgspec

from liveshop.commerce.draws import DrawResult, session_draws
from liveshop.commerce.orders import SOLD_STATES
from liveshop.commerce.polls import PollResult, session_polls
from liveshop.commerce.rooms import SESSION_COLUMNS, SessionTotals
from liveshop.engine.database import Database, Migration

MIGRATIONS = [
    Migration(
        "reviews",
        1,
        """
        CREATE TABLE IF NOT EXISTS session_minutes (
            session_id  TEXT NOT NULL,
            minute      INTEGER NOT NULL,
            viewers     INTEGER NOT NULL,
            PRIMARY KEY (session_id, minute)
        );
        CREATE TABLE IF NOT EXISTS session_offers (
            session_id      TEXT NOT NULL,
            offer_id        TEXT NOT NULL,
            room_id         TEXT NOT NULL,
            sku             TEXT NOT NULL,
            price           BIGINT NOT NULL,
            qty             INTEGER NOT NULL,
            per_user_limit  INTEGER NOT NULL,
            starts_at       BIGINT NOT NULL,
            ends_at         BIGINT NOT NULL,
            status          TEXT NOT NULL,
            PRIMARY KEY (session_id, offer_id)
        );
        CREATE TABLE IF NOT EXISTS session_groups (
            session_id  TEXT NOT NULL,
            group_id    TEXT NOT NULL,
            room_id     TEXT NOT NULL,
            sku         TEXT NOT NULL,
            price       BIGINT NOT NULL,
            metric      TEXT NOT NULL,
            threshold   INTEGER NOT NULL,
            value       INTEGER NOT NULL,
            cap         INTEGER NOT NULL,
            ends_at     BIGINT NOT NULL,
            status      TEXT NOT NULL,
            PRIMARY KEY (session_id, group_id)
        );
        CREATE TABLE IF NOT EXISTS session_hints (
            session_id  TEXT NOT NULL,
            n           INTEGER NOT NULL,
            room_id     TEXT NOT NULL,
            at          BIGINT NOT NULL,
            code        TEXT NOT NULL,
            sku         TEXT,
            text        TEXT NOT NULL,
            text_en     TEXT NOT NULL,
            PRIMARY KEY (session_id, n)
        )
        """,
    ),
]

T = TypeVar("T")
AFTER_HINT_MS = 5 * 60_000  # "what the next 5 minutes did"
PREVIOUS_SESSIONS = 5
CHAIN_WINDOW_MS = 7 * 24 * 3600_000  # the chain's sessions of the week before this one
PICKED_UP = ("picked_up", "delivered")
TOP_PRODUCTS = 10


class OrderRow(msgspec.Struct, frozen=True):
    user_id: str
    sku: str
    qty: int
    unit_price: int
    state: str
    created_at: int
    offer_id: str | None
    group_id: str | None


class SessionRow(msgspec.Struct, frozen=True):
    session_id: str
    room_id: str
    title: str
    started_at: int
    ended_at: int | None
    peak: int | None
    orders: int | None
    units: int | None
    gmv: int | None
    buyers: int | None
    viewers: int | None
    group_joins: int | None
    groups_succeeded: int | None
    groups_failed: int | None


class OfferRow(msgspec.Struct, frozen=True):
    offer_id: str
    sku: str
    price: int
    qty: int
    per_user_limit: int
    starts_at: int
    ends_at: int
    status: str


class GroupRow(msgspec.Struct, frozen=True):
    group_id: str
    sku: str
    price: int
    metric: str
    threshold: int
    value: int
    cap: int
    ends_at: int
    status: str


class HintRow(msgspec.Struct, frozen=True):
    at: int
    code: str
    sku: str | None
    text: str
    text_en: str


class Minute(msgspec.Struct, frozen=True):
    minute: int
    viewers: int  # the peak of concurrent viewers in that minute
    orders: int  # orders placed in that minute (any state now)
    units: int
    gmv: int  # of the orders placed that are sold now


class Funnel(msgspec.Struct, frozen=True):
    viewers: int  # distinct viewers of the session
    buyers: int  # distinct buyers with an order that is sold now
    units: int  # units of those orders
    picked_up: int  # units picked up at the counter or delivered


class ProductResult(msgspec.Struct, frozen=True):
    sku: str
    name: str
    orders: int
    units: int
    gmv: int


class OfferResult(msgspec.Struct, frozen=True):
    offer_id: str
    sku: str
    price: int
    qty: int
    starts_at: int
    ends_at: int
    status: str
    units: int  # sold now (cancelled orders do not count)
    buyers: int
    sell_through: float  # units / qty


class GroupResult(msgspec.Struct, frozen=True):
    group_id: str
    sku: str
    price: int
    metric: str
    threshold: int
    value: int
    status: str
    members: int  # distinct users who joined
    units: int  # joined units (any state)


class HintResult(msgspec.Struct, frozen=True):
    at: int
    minute: int
    code: str
    sku: str | None
    text: str
    text_en: str
    orders_before: int  # orders placed in the 5 minutes before the hint
    orders_after: int  # ... and in the 5 minutes after it
    viewers_at: int
    viewers_after: int  # peak viewers 5 minutes later (the last minute if sooner)


class Figures(msgspec.Struct, frozen=True):
    viewers: float
    buyers: float
    conversion: float
    orders: float
    units: float
    gmv: float
    peak: float


class Comparison(msgspec.Struct, frozen=True):
    this: Figures
    previous: Figures | None  # the median of the store's previous sessions
    previous_sessions: int
    chain: Figures | None  # the median of the chain's other sessions of the week before
    chain_sessions: int


class Report(msgspec.Struct, frozen=True):
    room: str
    session_id: str
    title: str
    started_at: int
    ended_at: int | None
    minutes: list[Minute]
    funnel: Funnel
    products: list[ProductResult]
    offers: list[OfferResult]
    groups: list[GroupResult]
    hints: list[HintResult]
    comparison: Comparison
    polls: list[PollResult] = []
    draws: list[DrawResult] = []


def figures(s: SessionRow) -> Figures:
    viewers, buyers = s.viewers or 0, s.buyers or 0
    return Figures(
        viewers=viewers,
        buyers=buyers,
        conversion=round(buyers / viewers, 4) if viewers else 0.0,
        orders=s.orders or 0,
        units=s.units or 0,
        gmv=s.gmv or 0,
        peak=s.peak or 0,
    )


def median_figures(sessions: Sequence[SessionRow]) -> Figures | None:
    if not sessions:
        return None
    each = [figures(s) for s in sessions]
    return Figures(
        **{
            f.name: float(statistics.median(getattr(x, f.name) for x in each))
            for f in msgspec.structs.fields(Figures)
        }
    )


def build(
    session: SessionRow,
    orders: Sequence[OrderRow],
    viewers_by_minute: dict[int, int],
    offers: Sequence[OfferRow],
    groups: Sequence[GroupRow],
    hints: Sequence[HintRow],
    previous: Sequence[SessionRow],
    chain: Sequence[SessionRow],
    names: dict[str, str],
) -> Report:
    """The review of one session (pure). Minutes count from going live; the last minute
    is the one `ended_at` falls in (or the last order's, for a session still live)."""
    start = session.started_at
    end = session.ended_at or max([start, *(o.created_at for o in orders)])
    n_minutes = (end - start) // 60_000 + 1
    sold = [o for o in orders if o.state in SOLD_STATES]
    minutes = []
    for m in range(n_minutes):
        placed = [o for o in orders if (o.created_at - start) // 60_000 == m]
        minutes.append(
            Minute(
                minute=m,
                viewers=viewers_by_minute.get(m, 0),
                orders=len(placed),
                units=sum(o.qty for o in placed),
                gmv=sum(o.qty * o.unit_price for o in placed if o.state in SOLD_STATES),
            )
        )
    funnel = Funnel(
        viewers=session.viewers or 0,
        buyers=len({o.user_id for o in sold}),
        units=sum(o.qty for o in sold),
        picked_up=sum(o.qty for o in sold if o.state in PICKED_UP),
    )
    by_sku: dict[str, list[OrderRow]] = {}
    for o in sold:
        by_sku.setdefault(o.sku, []).append(o)
    products = sorted(
        (
            ProductResult(
                sku,
                names.get(sku, sku),
                len(rows),
                sum(o.qty for o in rows),
                sum(o.qty * o.unit_price for o in rows),
            )
            for sku, rows in by_sku.items()
        ),
        key=lambda r: (-r.units, -r.gmv, r.sku),
    )[:TOP_PRODUCTS]
    offer_results = []
    for offer in sorted(offers, key=lambda x: (x.starts_at, x.offer_id)):
        mine = [o for o in sold if o.offer_id == offer.offer_id]
        units = sum(o.qty for o in mine)
        offer_results.append(
            OfferResult(
                offer.offer_id,
                offer.sku,
                offer.price,
                offer.qty,
                offer.starts_at,
                offer.ends_at,
                offer.status,
                units,
                len({o.user_id for o in mine}),
                round(units / offer.qty, 4) if offer.qty else 0.0,
            )
        )
    group_results = []
    for g in sorted(groups, key=lambda x: (x.ends_at, x.group_id)):
        joined = [o for o in orders if o.group_id == g.group_id]
        group_results.append(
            GroupResult(
                g.group_id,
                g.sku,
                g.price,
                g.metric,
                g.threshold,
                g.value,
                g.status,
                len({o.user_id for o in joined}),
                sum(o.qty for o in joined),
            )
        )
    last_minute = n_minutes - 1
    hint_results = []
    for h in sorted(hints, key=lambda x: x.at):
        minute = max(0, min(last_minute, (h.at - start) // 60_000))
        hint_results.append(
            HintResult(
                at=h.at,
                minute=minute,
                code=h.code,
                sku=h.sku,
                text=h.text,
                text_en=h.text_en,
                orders_before=sum(1 for o in orders if h.at - AFTER_HINT_MS <= o.created_at < h.at),
                orders_after=sum(1 for o in orders if h.at <= o.created_at < h.at + AFTER_HINT_MS),
                viewers_at=viewers_by_minute.get(minute, 0),
                viewers_after=viewers_by_minute.get(min(last_minute, minute + 5), 0),
            )
        )
    return Report(
        room=session.room_id,
        session_id=session.session_id,
        title=session.title,
        started_at=start,
        ended_at=session.ended_at,
        minutes=minutes,
        funnel=funnel,
        products=products,
        offers=offer_results,
        groups=group_results,
        hints=hint_results,
        comparison=Comparison(
            this=figures(session),
            previous=median_figures(previous),
            previous_sessions=len(previous),
            chain=median_figures(chain),
            chain_sessions=len(chain),
        ),
    )


def _rows(kind: type[T], columns: Sequence[str], rows: Sequence[tuple[object, ...]]) -> list[T]:
    return [msgspec.convert(dict(zip(columns, r, strict=True)), kind) for r in rows]


_ORDER_COLUMNS = (
    "user_id",
    "sku",
    "qty",
    "unit_price",
    "state",
    "created_at",
    "offer_id",
    "group_id",
)
_OFFER_COLUMNS = (
    "offer_id",
    "sku",
    "price",
    "qty",
    "per_user_limit",
    "starts_at",
    "ends_at",
    "status",
)
_GROUP_COLUMNS = (
    "group_id",
    "sku",
    "price",
    "metric",
    "threshold",
    "value",
    "cap",
    "ends_at",
    "status",
)
_HINT_COLUMNS = ("at", "code", "sku", "text", "text_en")


class Reviews:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def init_schema(self) -> None:
        await self._db.migrate(MIGRATIONS)

    async def store(self, room_id: str, t: SessionTotals) -> None:
        """Keep what the close script read of the session (idempotent)."""
        sid = t.session_id
        if t.viewers_by_minute:
            await self._db.execute_many(
                "INSERT INTO session_minutes (session_id, minute, viewers) VALUES ($1, $2, $3) "
                "ON CONFLICT (session_id, minute) DO NOTHING",
                [(sid, m, v) for m, v in sorted(t.viewers_by_minute.items())],
            )
        if t.offers:
            await self._db.execute_many(
                "INSERT INTO session_offers (session_id, offer_id, room_id, sku, price, qty, "
                "per_user_limit, starts_at, ends_at, status) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                "ON CONFLICT (session_id, offer_id) DO NOTHING",
                [
                    (
                        sid,
                        o.offer_id,
                        room_id,
                        o.sku,
                        o.price,
                        o.qty,
                        o.per_user_limit,
                        o.starts_at,
                        o.ends_at,
                        o.status,
                    )
                    for o in t.offers
                ],
            )
        if t.groups:
            await self._db.execute_many(
                "INSERT INTO session_groups (session_id, group_id, room_id, sku, price, metric, "
                "threshold, value, cap, ends_at, status) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                "ON CONFLICT (session_id, group_id) DO NOTHING",
                [
                    (
                        sid,
                        g.group_id,
                        room_id,
                        g.sku,
                        g.price,
                        g.metric,
                        g.threshold,
                        g.value,
                        g.cap,
                        g.ends_at,
                        g.status,
                    )
                    for g in t.groups
                ],
            )
        if t.hints:
            decoded = [msgspec.json.decode(h, type=HintRow) for h in t.hints]
            await self._db.execute_many(
                "INSERT INTO session_hints (session_id, n, room_id, at, code, sku, text, text_en) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (session_id, n) DO NOTHING",
                [
                    (sid, n, room_id, h.at, h.code, h.sku, h.text, h.text_en)
                    for n, h in enumerate(decoded)
                ],
            )

    async def report(self, room_id: str, session_id: str, names: dict[str, str]) -> Report | None:
        found = await self._sessions(
            "WHERE room_id = $1 AND session_id = $2", (room_id, session_id)
        )
        if not found:
            return None
        session = found[0]
        sid = (session_id,)
        orders = _rows(
            OrderRow,
            _ORDER_COLUMNS,
            await self._db.fetch(
                f"SELECT {', '.join(_ORDER_COLUMNS)} FROM orders WHERE session_id = $1", sid
            ),
        )
        minutes = {
            int(str(m)): int(str(v))
            for m, v in await self._db.fetch(
                "SELECT minute, viewers FROM session_minutes WHERE session_id = $1", sid
            )
        }
        offers = _rows(
            OfferRow,
            _OFFER_COLUMNS,
            await self._db.fetch(
                f"SELECT {', '.join(_OFFER_COLUMNS)} FROM session_offers WHERE session_id = $1",
                sid,
            ),
        )
        groups = _rows(
            GroupRow,
            _GROUP_COLUMNS,
            await self._db.fetch(
                f"SELECT {', '.join(_GROUP_COLUMNS)} FROM session_groups WHERE session_id = $1",
                sid,
            ),
        )
        hints = _rows(
            HintRow,
            _HINT_COLUMNS,
            await self._db.fetch(
                f"SELECT {', '.join(_HINT_COLUMNS)} FROM session_hints WHERE session_id = $1 "
                "ORDER BY n",
                sid,
            ),
        )
        previous = await self._sessions(
            "WHERE room_id = $1 AND started_at < $2 AND ended_at IS NOT NULL "
            f"ORDER BY started_at DESC LIMIT {PREVIOUS_SESSIONS}",
            (room_id, session.started_at),
        )
        chain = await self._sessions(
            "WHERE room_id <> $1 AND ended_at IS NOT NULL AND started_at >= $2 AND started_at < $3",
            (room_id, session.started_at - CHAIN_WINDOW_MS, session.ended_at or session.started_at),
        )
        report = build(session, orders, minutes, offers, groups, hints, previous, chain, names)
        return msgspec.structs.replace(
            report,
            polls=await session_polls(self._db, session_id),
            draws=await session_draws(self._db, session_id),
        )

    async def _sessions(self, where: str, args: Sequence[object]) -> list[SessionRow]:
        rows = await self._db.fetch(
            f"SELECT {', '.join(SESSION_COLUMNS)} FROM sessions {where}", args
        )
        return _rows(SessionRow, SESSION_COLUMNS, rows)
