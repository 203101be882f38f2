"""The store's dashboard (门店经营看板) and HQ's chain-wide one: a room's (or every room's)
ended sessions in a time window, what was sold in them, best sellers, new and returning
buyers, the repurchase rate (复购率), and the store's customers with the behaviour tags of
customer_tags.py (pure rules, each tag carrying the rule that set it and its numbers).

Reads the `sessions` (rooms.py), `orders` (orders.py) and `catalog_versions` (catalog.py)
tables; owns none and never writes. A read is a snapshot of the database: orders still in
the outbox, and a session still live, are not in it yet. docs/insights.md defines every
figure in words.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import msgspec

from liveshop.commerce.catalog import Catalog
from liveshop.commerce.customer_tags import FREQUENT_SESSIONS, Line, Tag, customer_tags, rules
from liveshop.commerce.orders import SOLD_STATES
from liveshop.engine.database import Database, Row

BEST_SELLERS = 10
SESSIONS_SHOWN = 50
END_OF_TIME = 2**62  # an open window's `until`
_CHUNK = 500  # values per IN (…) list, far below either engine's limit


# -- what the dashboard shows ------------------------------------------------------------


class Window(msgspec.Struct, frozen=True):
    """Sessions that started in [since, until) and have ended. `start` is where "before
    the window" ends for new vs returning buyers: `since`, or without one the first
    session's start."""

    since: int | None = None
    until: int | None = None
    start: int | None = None


class Figures(msgspec.Struct, frozen=True):
    sessions: int
    viewers: int  # the sessions' distinct viewers, summed over sessions
    buyers: int  # distinct buyers in the window
    buyer_sessions: int  # distinct buyers per session, summed: conversion's numerator
    conversion: float | None  # buyer_sessions / viewers
    orders: int
    units: int
    gmv: int  # 分, orders in a sold state only
    new_buyers: int
    returning_buyers: int
    repeat_buyers: int  # bought in two sessions of the window or more
    repurchase_rate: float | None  # repeat_buyers / buyers


class SkuSales(msgspec.Struct, frozen=True):
    sku: str
    name: str
    category: str
    units: int
    gmv: int
    buyers: int


class SessionRow(msgspec.Struct, frozen=True):
    session_id: str
    title: str
    started_at: int
    ended_at: int
    peak: int
    viewers: int
    buyers: int
    orders: int
    units: int
    gmv: int


class StoreRow(msgspec.Struct, frozen=True):
    room_id: str
    name: str
    sessions: int
    viewers: int
    buyers: int
    buyer_sessions: int
    conversion: float | None
    orders: int
    units: int
    gmv: int
    repeat_buyers: int
    repurchase_rate: float | None


class Customer(msgspec.Struct, frozen=True):
    user_id: str
    orders: int
    units: int
    gmv: int
    sessions: int
    first_order_at: int
    last_order_at: int
    returning: bool
    tags: list[Tag]


class RoomDashboard(msgspec.Struct, frozen=True):
    room: str
    window: Window
    figures: Figures
    best_sellers: list[SkuSales]
    sessions: list[SessionRow]  # newest first, at most SESSIONS_SHOWN
    rules: dict[str, int]


class ChainDashboard(msgspec.Struct, frozen=True):
    window: Window
    figures: Figures
    best_sellers: list[SkuSales]
    stores: list[StoreRow]  # by GMV, then room id
    rules: dict[str, int]


class CustomerPage(msgspec.Struct, frozen=True):
    room: str
    window: Window
    total: int
    limit: int
    offset: int
    customers: list[Customer]  # by GMV, then user id


# -- pure --------------------------------------------------------------------------------


def ratio(part: int, whole: int) -> float | None:
    """part / whole to four decimals; None when there is no whole to divide by."""
    return round(part / whole, 4) if whole else None


def page_customers(rows: Sequence[Customer], limit: int, offset: int) -> tuple[int, list[Customer]]:
    """Customers by GMV (highest first), then user id; one page of them and the total."""
    ordered = sorted(rows, key=lambda c: (-c.gmv, c.user_id))
    return len(ordered), ordered[offset : offset + limit]


# -- the SQL -----------------------------------------------------------------------------


def as_int(value: object) -> int:
    """A count or sum as either engine returns it (PostgreSQL's SUM of BIGINT is a
    Decimal; SQLite's SUM of no rows is NULL)."""
    return 0 if value is None else int(str(value))


class Query:
    """One statement's arguments, numbered as they are added: a statement never carries
    a parameter it does not use (PostgreSQL refuses one whose type it cannot infer)."""

    def __init__(self) -> None:
        self.args: list[object] = []

    def arg(self, value: object) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def args_in(self, values: Sequence[object]) -> str:
        return ", ".join(self.arg(v) for v in values)

    def sessions(self, window: Window, room_id: str | None, alias: str = "s") -> str:
        """The window's sessions, as a WHERE condition on `sessions {alias}`."""
        since = window.since or 0
        until = window.until if window.until is not None else END_OF_TIME
        where = (
            f"{alias}.ended_at IS NOT NULL AND {alias}.started_at >= {self.arg(since)} "
            f"AND {alias}.started_at < {self.arg(until)}"
        )
        if room_id is not None:
            where += f" AND {alias}.room_id = {self.arg(room_id)}"
        return where

    def sold(self, window: Window, room_id: str | None) -> str:
        """`WITH w AS (…)`: the window's orders in a sold state, one row per order."""
        return (
            "WITH w AS (SELECT s.room_id, o.session_id, o.user_id, o.sku, o.qty, "
            "o.unit_price, o.offer_id, o.group_id, o.created_at, "
            "CAST(o.qty AS BIGINT) * o.unit_price AS amount "
            "FROM orders o JOIN sessions s ON s.session_id = o.session_id "
            f"WHERE {self.sessions(window, room_id)} "
            f"AND o.state IN ({self.args_in(SOLD_STATES)})) "
        )


def chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


class Dashboard:
    """The figures, read from the order database. One instance per process."""

    def __init__(self, db: Database, catalog: Catalog) -> None:
        self._db = db
        self._catalog = catalog

    async def _fetch(self, build: Query, sql: str) -> list[Row]:
        return await self._db.fetch(sql, build.args)

    async def room(self, room_id: str, window: Window) -> RoomDashboard:
        sessions = await self._sessions(room_id, window)
        window = _started(window, [s.started_at for s in sessions])
        figures = await self._figures(room_id, window, len(sessions), _viewers(sessions))
        return RoomDashboard(
            room=room_id,
            window=window,
            figures=figures,
            best_sellers=await self._best_sellers(room_id, window),
            sessions=sessions[:SESSIONS_SHOWN],
            rules=rules(),
        )

    async def chain(
        self, window: Window, rooms: Sequence[str] = (), names: Mapping[str, str] | None = None
    ) -> ChainDashboard:
        """Every room's sessions at once; `rooms` (ids) are listed even without any."""
        q = Query()
        by_room = {
            str(r[0]): (as_int(r[1]), as_int(r[2]), as_int(r[3]))
            for r in await self._fetch(
                q,
                "SELECT s.room_id, COUNT(*), SUM(s.viewers), MIN(s.started_at) FROM sessions s "
                f"WHERE {q.sessions(window, None)} GROUP BY s.room_id",
            )
        }
        window = _started(window, [v[2] for v in by_room.values()])
        figures = await self._figures(
            None, window, sum(v[0] for v in by_room.values()), sum(v[1] for v in by_room.values())
        )
        q = Query()
        sales = {
            str(r[0]): (as_int(r[1]), as_int(r[2]), as_int(r[3]), as_int(r[4]))
            for r in await self._fetch(
                q,
                q.sold(window, None) + "SELECT room_id, COUNT(*), SUM(qty), SUM(amount), "
                "COUNT(DISTINCT user_id) FROM w GROUP BY room_id",
            )
        }
        q = Query()
        repeats = {
            str(r[0]): (as_int(r[1]), as_int(r[2]))
            for r in await self._fetch(
                q,
                q.sold(window, None) + ", b AS (SELECT room_id, user_id, "
                "COUNT(DISTINCT session_id) AS n FROM w GROUP BY room_id, user_id) "
                "SELECT room_id, SUM(n), SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END) "
                "FROM b GROUP BY room_id",
            )
        }
        stores = []
        for room_id in sorted(set(rooms) | set(by_room)):
            n_sessions, viewers, _ = by_room.get(room_id, (0, 0, 0))
            orders, units, gmv, buyers = sales.get(room_id, (0, 0, 0, 0))
            buyer_sessions, repeat = repeats.get(room_id, (0, 0))
            stores.append(
                StoreRow(
                    room_id=room_id,
                    name=(names or {}).get(room_id, ""),
                    sessions=n_sessions,
                    viewers=viewers,
                    buyers=buyers,
                    buyer_sessions=buyer_sessions,
                    conversion=ratio(buyer_sessions, viewers),
                    orders=orders,
                    units=units,
                    gmv=gmv,
                    repeat_buyers=repeat,
                    repurchase_rate=ratio(repeat, buyers),
                )
            )
        stores.sort(key=lambda s: (-s.gmv, s.room_id))
        return ChainDashboard(
            window=window,
            figures=figures,
            best_sellers=await self._best_sellers(None, window),
            stores=stores,
            rules=rules(),
        )

    async def customers(
        self, room_id: str, window: Window, *, limit: int = 20, offset: int = 0
    ) -> CustomerPage:
        """The room's buyers in the window, by GMV, with their tags."""
        sessions = await self._sessions(room_id, window)
        window = _started(window, [s.started_at for s in sessions])
        q = Query()
        rows = await self._fetch(
            q,
            q.sold(window, room_id) + "SELECT user_id, COUNT(*), SUM(qty), SUM(amount), "
            "COUNT(DISTINCT session_id), MIN(created_at), MAX(created_at) FROM w "
            "GROUP BY user_id",
        )
        untagged = [
            Customer(
                str(r[0]),
                as_int(r[1]),
                as_int(r[2]),
                as_int(r[3]),
                as_int(r[4]),
                as_int(r[5]),
                as_int(r[6]),
                False,
                [],
            )
            for r in rows
        ]
        total, page = page_customers(untagged, limit, offset)
        users = [c.user_id for c in page]
        lines: dict[str, list[Line]] = defaultdict(list)
        returning: set[str] = set()
        for chunk in chunks(users):
            q = Query()
            for r in await self._fetch(
                q,
                q.sold(window, room_id) + "SELECT user_id, session_id, sku, qty, unit_price, "
                f"offer_id, group_id, created_at FROM w WHERE user_id IN ({q.args_in(chunk)})",
            ):
                lines[str(r[0])].append(
                    Line(
                        str(r[1]),
                        str(r[2]),
                        as_int(r[3]),
                        as_int(r[4]),
                        None if r[5] is None else str(r[5]),
                        None if r[6] is None else str(r[6]),
                        as_int(r[7]),
                    )
                )
            returning |= await self._returning(room_id, window, chunk)
        catalog = await self._catalog.versions_of(
            sorted({ln.sku for ls in lines.values() for ln in ls})
        )
        recent = [s.session_id for s in sessions[:FREQUENT_SESSIONS]]
        customers = [
            msgspec.structs.replace(
                c,
                returning=c.user_id in returning,
                tags=customer_tags(lines[c.user_id], recent, catalog),
            )
            for c in page
        ]
        return CustomerPage(room_id, window, total, limit, offset, customers)

    # -- the parts -----------------------------------------------------------------------

    async def _sessions(self, room_id: str, window: Window) -> list[SessionRow]:
        """The room's window sessions, newest first, with their sold figures."""
        q = Query()
        sold = {
            str(r[0]): (as_int(r[1]), as_int(r[2]), as_int(r[3]), as_int(r[4]))
            for r in await self._fetch(
                q,
                q.sold(window, room_id) + "SELECT session_id, COUNT(DISTINCT user_id), "
                "COUNT(*), SUM(qty), SUM(amount) FROM w GROUP BY session_id",
            )
        }
        q = Query()
        rows = await self._fetch(
            q,
            "SELECT s.session_id, s.title, s.started_at, s.ended_at, s.peak, s.viewers "
            f"FROM sessions s WHERE {q.sessions(window, room_id)}",
        )
        out = [
            SessionRow(
                str(r[0]),
                str(r[1]),
                as_int(r[2]),
                as_int(r[3]),
                as_int(r[4]),
                as_int(r[5]),
                *sold.get(str(r[0]), (0, 0, 0, 0)),
            )
            for r in rows
        ]
        out.sort(key=lambda s: (-s.started_at, s.session_id))
        return out

    async def _figures(
        self, room_id: str | None, window: Window, sessions: int, viewers: int
    ) -> Figures:
        q = Query()
        orders, units, gmv = (
            as_int(v)
            for v in (
                await self._fetch(
                    q, q.sold(window, room_id) + "SELECT COUNT(*), SUM(qty), SUM(amount) FROM w"
                )
            )[0]
        )
        q = Query()
        buyers, buyer_sessions, repeat = (
            as_int(v)
            for v in (
                await self._fetch(
                    q,
                    q.sold(window, room_id) + ", b AS (SELECT user_id, "
                    "COUNT(DISTINCT session_id) AS n FROM w GROUP BY user_id) "
                    "SELECT COUNT(*), SUM(n), SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END) FROM b",
                )
            )[0]
        )
        returning = 0
        if window.start is not None:
            q = Query()
            earlier = self._earlier(q, window.start, room_id)
            returning = as_int(
                (
                    await self._fetch(
                        q,
                        q.sold(window, room_id)
                        + f"SELECT COUNT(DISTINCT w.user_id) FROM w WHERE EXISTS ({earlier})",
                    )
                )[0][0]
            )
        return Figures(
            sessions=sessions,
            viewers=viewers,
            buyers=buyers,
            buyer_sessions=buyer_sessions,
            conversion=ratio(buyer_sessions, viewers),
            orders=orders,
            units=units,
            gmv=gmv,
            new_buyers=buyers - returning,
            returning_buyers=returning,
            repeat_buyers=repeat,
            repurchase_rate=ratio(repeat, buyers),
        )

    @staticmethod
    def _earlier(q: Query, start: int, room_id: str | None) -> str:
        """A sold order of `w.user_id` in a session (of the room, or any) that started
        before the window."""
        sql = (
            "SELECT 1 FROM orders p JOIN sessions ps ON ps.session_id = p.session_id "
            f"WHERE p.user_id = w.user_id AND ps.started_at < {q.arg(start)} "
            f"AND p.state IN ({q.args_in(SOLD_STATES)})"
        )
        if room_id is not None:
            sql += f" AND ps.room_id = {q.arg(room_id)}"
        return sql

    async def _returning(self, room_id: str, window: Window, users: Sequence[str]) -> set[str]:
        if window.start is None:
            return set()
        q = Query()
        earlier = self._earlier(q, window.start, room_id)
        rows = await self._fetch(
            q,
            q.sold(window, room_id) + "SELECT DISTINCT w.user_id FROM w "
            f"WHERE w.user_id IN ({q.args_in(users)}) AND EXISTS ({earlier})",
        )
        return {str(r[0]) for r in rows}

    async def _best_sellers(self, room_id: str | None, window: Window) -> list[SkuSales]:
        q = Query()
        rows = await self._fetch(
            q,
            q.sold(window, room_id) + "SELECT sku, SUM(qty), SUM(amount), "
            "COUNT(DISTINCT user_id) FROM w GROUP BY sku",
        )
        # Sorted here, not in SQL: ties by sku in code-point order on both engines
        # (PostgreSQL's text order follows the database's collation).
        top = sorted(rows, key=lambda r: (-as_int(r[1]), -as_int(r[2]), str(r[0])))[:BEST_SELLERS]
        catalog = await self._catalog.versions_of([str(r[0]) for r in top])
        out = []
        for r in top:
            sku = str(r[0])
            versions = catalog.get(sku, ())
            latest = max(versions, key=lambda v: v.version) if versions else None
            out.append(
                SkuSales(
                    sku,
                    latest.name if latest else "",
                    latest.category if latest else "",
                    as_int(r[1]),
                    as_int(r[2]),
                    as_int(r[3]),
                )
            )
        return out


def _viewers(sessions: Sequence[SessionRow]) -> int:
    return sum(s.viewers for s in sessions)


def _started(window: Window, starts: Sequence[int]) -> Window:
    """The window with its `start`: `since`, else its first session's start."""
    start = window.since if window.since is not None else min(starts, default=None)
    return Window(window.since, window.until, start)
