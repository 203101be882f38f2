"""Product suggestions for a store's next live (智能选品): SKUs ranked from the store's own
last sessions, what similar stores sold (the same region, or the most similar baskets), and
what is trending across the chain; each with a one-sentence reason (zh, en) and a forecast
of the next session's units with a range.

Reads the `sessions`, `orders` and `catalog_versions` tables; owns none and never writes.
The peers, the trend, the forecast and the ranking are pure functions of plain data
(`similar_stores`, `trending`, `forecast`, `rank`) and deterministic: exact fractions, ties
broken by sku (peers by room id). docs/insights.md explains every constant below.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import msgspec

from liveshop.commerce.catalog import Catalog
from liveshop.commerce.dashboard import Query, as_int, chunks
from liveshop.commerce.orders import SOLD_STATES
from liveshop.engine.database import Database

DAY_MS = 86_400_000
OWN_SESSIONS = 5  # the store's last ended sessions: its history and its audience
BASKET_DAYS = 28  # the SKU unit vectors compared for basket similarity
BASKET_PEERS = 3  # the most similar stores outside the region…
BASKET_MIN_COSINE = Fraction(1, 2)  # …whose cosine similarity is at least this
WEEK_DAYS = 7  # "the last 7 days": similar stores' sales, the chain's trend
EVIDENCE_DAYS = 14  # other stores' ended sessions a forecast may rest on
TREND_MIN_UNITS = 20  # trending: at least this many units chain-wide in the last 7 days…
TREND_GROWTH = Fraction(3, 2)  # …and at least 1.5 × the 7 days before (+50 %)
TREND_WEIGHT = Fraction(3, 2)  # a trending SKU's score: its expected units × 1.5
QUARTILES_FROM = 4  # evidence sessions from which the range is p25-p75 (fewer: min-max)
SUGGESTIONS = 10


# -- the inputs, plain data --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionUnits:
    """One ended session: its distinct viewers and the units it sold per SKU."""

    room_id: str
    session_id: str
    started_at: int
    viewers: int
    units: Mapping[str, int]


class Peer(msgspec.Struct, frozen=True):
    room_id: str
    kind: str  # region | basket
    similarity: float  # cosine of the two stores' SKU unit vectors (BASKET_DAYS)


@dataclass(frozen=True, slots=True)
class Market:
    """Everything `rank` judges a store's next live by."""

    room_id: str
    own: Sequence[SessionUnits]  # the store's last OWN_SESSIONS ended sessions
    peers: Sequence[Peer]
    peer_week: Mapping[str, Mapping[str, int]]  # peer → sku → units in the last 7 days
    peer_sessions: Sequence[SessionUnits]  # the peers' ended sessions (EVIDENCE_DAYS)
    chain_week: Mapping[str, int]  # sku → units chain-wide in the last 7 days
    chain_prev: Mapping[str, int]  # sku → units chain-wide in the 7 days before
    chain_sessions: Sequence[SessionUnits]  # any store's (EVIDENCE_DAYS)
    listed: Collection[str] | None = None  # on the store's shelf now; None: not known
    names: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # (zh, en)


# -- the outputs -------------------------------------------------------------------------


class Reason(msgspec.Struct, frozen=True):
    code: str  # own | region | basket | trend
    text: str
    text_en: str
    numbers: dict[str, int | float | None]


class Forecast(msgspec.Struct, frozen=True):
    expected: int  # units in the next session
    low: int
    high: int
    basis: str  # own | peers | chain | none
    sessions: int  # evidence sessions
    audience: int | None  # the expected viewers it was scaled to (None: not scaled)
    rule: str
    rule_en: str


class Suggestion(msgspec.Struct, frozen=True):
    sku: str
    name: str
    name_en: str
    score: float  # expected units, × TREND_WEIGHT when trending
    listed: bool | None
    reason: str  # the first of `reasons`, as one sentence
    reason_en: str
    reasons: list[Reason]
    forecast: Forecast


class SuggestionList(msgspec.Struct, frozen=True):
    room: str
    now: int
    audience: int | None
    peers: list[Peer]
    suggestions: list[Suggestion]


# -- the rules (pure) --------------------------------------------------------------------


def _cosine_sq(a: Mapping[str, int], b: Mapping[str, int]) -> Fraction:
    """The squared cosine similarity of two unit vectors (exact; units are never negative,
    so the cosine is its square root)."""
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    norms = sum(v * v for v in a.values()) * sum(v * v for v in b.values())
    return Fraction(dot * dot, norms) if norms else Fraction(0)


def similar_stores(
    room_id: str, regions: Mapping[str, str], baskets: Mapping[str, Mapping[str, int]]
) -> list[Peer]:
    """Every other store of the room's region (by room id), then the BASKET_PEERS stores
    outside it whose baskets are most similar (cosine ≥ BASKET_MIN_COSINE; ties by id)."""
    mine = baskets.get(room_id, {})
    region = regions.get(room_id, "")
    near = sorted(r for r, g in regions.items() if region and g == region and r != room_id)
    peers = [
        Peer(r, "region", round(math.sqrt(_cosine_sq(mine, baskets.get(r, {}))), 3)) for r in near
    ]
    scored = [
        (_cosine_sq(mine, basket), r)
        for r, basket in baskets.items()
        if r != room_id and r not in near
    ]
    best = sorted((s for s in scored if s[0] >= BASKET_MIN_COSINE**2), key=lambda s: (-s[0], s[1]))
    peers += [Peer(r, "basket", round(math.sqrt(c), 3)) for c, r in best[:BASKET_PEERS]]
    return peers


def trending(week: Mapping[str, int], prev: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """sku → (units in the last 7 days, in the 7 before) for the SKUs that sold at least
    TREND_MIN_UNITS chain-wide and at least TREND_GROWTH × the week before."""
    return {
        sku: (units, prev.get(sku, 0))
        for sku, units in sorted(week.items())
        if units >= TREND_MIN_UNITS and units >= TREND_GROWTH * prev.get(sku, 0)
    }


def percentile(ordered: Sequence[Fraction], p: Fraction) -> Fraction:
    """Linear interpolation between the closest ranks (`ordered` sorted, non-empty)."""
    pos = p * (len(ordered) - 1)
    i = math.floor(pos)
    if i + 1 >= len(ordered):
        return ordered[-1]
    return ordered[i] + (ordered[i + 1] - ordered[i]) * (pos - i)


_BASIS = {
    "own": ("本店近 {n} 场", "this store's last {n} sessions"),
    "peers": (
        "卖过它的相似门店近 14 天的 {n} 场",
        "{n} sessions of the similar stores selling it (14 days)",
    ),
    "chain": ("全链近 14 天卖过它的 {n} 场", "{n} sessions chain-wide that sold it in 14 days"),
}


def forecast(samples: Sequence[tuple[int, int]], audience: int | None, basis: str) -> Forecast:
    """The next session's units from evidence sessions' (units, viewers): the median of
    units per viewer × the expected `audience`, the range p25-p75 of the same (min-max
    below QUARTILES_FROM sessions). Without an audience, or viewers, the units themselves."""
    rated = [Fraction(u, v) for u, v in samples if v > 0]
    scaled = audience is not None and bool(rated)
    values = sorted(rated if scaled else [Fraction(u) for u, _ in samples])
    if not values:
        return Forecast(
            0, 0, 0, "none", 0, None, "没有可参考的已结束场次", "No ended session to go by"
        )
    scale = audience if scaled and audience is not None else 1
    quartiles = len(values) >= QUARTILES_FROM
    lo, hi = (
        (percentile(values, Fraction(1, 4)), percentile(values, Fraction(3, 4)))
        if quartiles
        else (values[0], values[-1])
    )
    mid = percentile(values, Fraction(1, 2))
    zh, en = (s.format(n=len(values)) for s in _BASIS[basis])
    span_zh, span_en = (
        ("区间为 25%–75% 分位", "p25–p75")
        if quartiles
        else ("区间为最低到最高", "lowest to highest")
    )
    if scaled:
        per100 = f"{float(mid * 100):.1f}"
        rule = f"依据{zh}：每百位观众买 {per100} 件（中位数）× 预计观众 {scale} 人；{span_zh}"
        rule_en = (
            f"From {en}: {per100} units per 100 viewers (median) × {scale} expected viewers;"
            f" range {span_en}"
        )
    else:
        rule = f"依据{zh}：每场件数的中位数（无观众数可换算）；{span_zh}"
        rule_en = (
            f"From {en}: the median units per session (no audience to scale by); range {span_en}"
        )
    return Forecast(
        expected=math.floor(mid * scale + Fraction(1, 2)),
        low=math.floor(lo * scale),
        high=math.ceil(hi * scale),
        basis=basis,
        sessions=len(values),
        audience=scale if scaled else None,
        rule=rule,
        rule_en=rule_en,
    )


def audience_of(own: Sequence[SessionUnits]) -> int | None:
    """The next session's expected viewers: the median of the store's last sessions'
    (rounded half up); None without sessions or viewers."""
    if not own:
        return None
    mid = percentile(sorted(Fraction(s.viewers) for s in own), Fraction(1, 2))
    expected = math.floor(mid + Fraction(1, 2))
    return expected or None


def _peer_reason(code: str, units: int, stores: int, similarity: float) -> tuple[str, str]:
    if code == "region":
        return (
            f"同区域 {stores} 家门店近 7 天售出 {units} 件",
            f"{stores} store{'s' if stores > 1 else ''} in the same region sold {units}"
            " in the last 7 days",
        )
    return (
        f"购物篮相似的 {stores} 家门店（相似度最高 {similarity:.2f}）近 7 天售出 {units} 件",
        f"{stores} store{'s' if stores > 1 else ''} with a similar basket (similarity up to"
        f" {similarity:.2f}) sold {units} in the last 7 days",
    )


@dataclass(frozen=True, slots=True)
class _Signals:
    """What the market says, per SKU."""

    sessions: int  # the store's own sessions looked at
    own: Mapping[str, tuple[int, int]]  # sku → (units, sessions with sales)
    peers: Mapping[str, Mapping[str, list[tuple[int, float]]]]  # kind → sku → (units, sim)
    trends: Mapping[str, tuple[int, int]]

    @classmethod
    def of(cls, market: Market) -> _Signals:
        own: dict[str, tuple[int, int]] = {}
        for s in market.own:
            for sku, units in s.units.items():
                if units > 0:
                    total, with_sales = own.get(sku, (0, 0))
                    own[sku] = (total + units, with_sales + 1)
        peers: dict[str, dict[str, list[tuple[int, float]]]] = {"region": {}, "basket": {}}
        for peer in market.peers:
            for sku, units in market.peer_week.get(peer.room_id, {}).items():
                if units > 0:
                    peers[peer.kind].setdefault(sku, []).append((units, peer.similarity))
        trends = trending(market.chain_week, market.chain_prev)
        return cls(len(market.own), own, peers, trends)

    def skus(self) -> set[str]:
        return (
            set(self.own) | set(self.peers["region"]) | set(self.peers["basket"]) | set(self.trends)
        )


def _reasons(sku: str, signals: _Signals, listed: bool | None) -> list[Reason]:
    """Why: the store's own sales first, then its region's, similar baskets', the trend.
    Without sales of its own, each other reason says so (or that it is not listed)."""
    n_own = signals.sessions
    if sku in signals.own:
        tail = ("", "")
    elif listed is False:
        tail = ("，本店未上架", "; not on this store's shelf")
    elif n_own:
        tail = (f"，本店近 {n_own} 场未售出", f"; not sold here in the last {n_own} sessions")
    else:
        tail = ("，本店还没有直播过", "; this store has no session yet")
    reasons: list[Reason] = []
    if sku in signals.own:
        units, k = signals.own[sku]
        reasons.append(
            Reason(
                "own",
                f"本店近 {n_own} 场售出 {units} 件（{k} 场有销量）",
                f"This store sold {units} in its last {n_own} sessions ({k} with sales)",
                {"units": units, "sessions": n_own, "with_sales": k},
            )
        )
    for code in ("region", "basket"):
        sold = signals.peers[code].get(sku)
        if sold:
            units, top = sum(u for u, _ in sold), max(sim for _, sim in sold)
            zh, en = _peer_reason(code, units, len(sold), top)
            numbers: dict[str, int | float | None] = {"units": units, "stores": len(sold)}
            if code == "basket":
                numbers["similarity"] = top
            reasons.append(Reason(code, zh + tail[0], en + tail[1], numbers))
    if sku in signals.trends:
        units, prev = signals.trends[sku]
        growth = math.floor(Fraction(100 * (units - prev), prev)) if prev else None
        if growth is not None:
            zh = f"全链近 7 天售出 {units} 件，比前 7 天的 {prev} 件增长 {growth}%"
            en = f"{units} sold chain-wide in the last 7 days, up {growth}% from {prev}"
        else:
            zh = f"全链近 7 天售出 {units} 件，前 7 天没有销量"
            en = f"{units} sold chain-wide in the last 7 days, none in the 7 before"
        numbers = {"units": units, "prev": prev, "growth_pct": growth}
        reasons.append(Reason("trend", zh + tail[0], en + tail[1], numbers))
    return reasons


def rank(market: Market, limit: int = SUGGESTIONS) -> list[Suggestion]:
    """The store's suggestions by score (its forecast's expected units, × TREND_WEIGHT
    when trending chain-wide), highest first, then by sku; a SKU whose forecast range
    tops out at 0 units is left out."""
    signals = _Signals.of(market)
    audience = audience_of(market.own)
    ranked: list[tuple[Fraction, str, Suggestion]] = []
    for sku in signals.skus():
        listed = None if market.listed is None else sku in market.listed
        reasons = _reasons(sku, signals, listed)
        fc = _forecast_for(sku, market, audience, sku in signals.own)
        if fc.high == 0:
            continue  # not even its best evidence session would sell one: no suggestion
        score = Fraction(fc.expected) * (TREND_WEIGHT if sku in signals.trends else 1)
        name, name_en = market.names.get(sku, (sku, sku))
        suggestion = Suggestion(
            sku=sku,
            name=name,
            name_en=name_en,
            score=round(float(score), 3),
            listed=listed,
            reason=reasons[0].text,
            reason_en=reasons[0].text_en,
            reasons=reasons,
            forecast=fc,
        )
        ranked.append((score, sku, suggestion))
    ranked.sort(key=lambda r: (-r[0], r[1]))
    return [s for _, _, s in ranked[:limit]]


def _forecast_for(sku: str, market: Market, audience: int | None, own: bool) -> Forecast:
    """The closest evidence: the store's own sessions when it sold the SKU in them, else
    the sessions of the peers that sold it, else the chain's sessions that sold it."""
    if own:
        return forecast([(s.units.get(sku, 0), s.viewers) for s in market.own], audience, "own")
    carrying = {s.room_id for s in market.peer_sessions if s.units.get(sku, 0) > 0}
    if carrying:
        samples = [
            (s.units.get(sku, 0), s.viewers) for s in market.peer_sessions if s.room_id in carrying
        ]
        return forecast(samples, audience, "peers")
    sold = [(s.units[sku], s.viewers) for s in market.chain_sessions if s.units.get(sku, 0) > 0]
    return forecast(sold, audience, "chain")


# -- the SQL -----------------------------------------------------------------------------


class Suggestions:
    """Reads a store's market from the order database and ranks it. One per process."""

    def __init__(self, db: Database, catalog: Catalog) -> None:
        self._db = db
        self._catalog = catalog

    async def for_room(
        self,
        room_id: str,
        *,
        now: int,
        regions: Mapping[str, str],
        listed: Collection[str] | None = None,
        names: Mapping[str, str] | None = None,
        limit: int = SUGGESTIONS,
    ) -> SuggestionList:
        """`regions`: room → region of every room (the room hashes'); `listed`: the SKUs
        on the store's shelf now and `names` their names there (catalog names win)."""
        q = Query()
        own_rows = await self._db.fetch(
            "SELECT room_id, session_id, started_at, viewers FROM sessions "
            f"WHERE room_id = {q.arg(room_id)} AND ended_at IS NOT NULL "
            f"AND started_at < {q.arg(now)} ORDER BY started_at DESC, session_id DESC "
            f"LIMIT {q.arg(OWN_SESSIONS)}",
            q.args,
        )
        own = await self._with_units(own_rows)
        baskets, week, prev = await self._market(now)
        peers = similar_stores(room_id, regions, baskets)
        since = now - EVIDENCE_DAYS * DAY_MS
        peer_sessions: list[SessionUnits] = []
        for chunk in chunks([p.room_id for p in peers]):
            q = Query()
            rows = await self._db.fetch(
                "SELECT room_id, session_id, started_at, viewers FROM sessions "
                f"WHERE room_id IN ({q.args_in(chunk)}) AND ended_at IS NOT NULL "
                f"AND started_at >= {q.arg(since)} AND started_at < {q.arg(now)}",
                q.args,
            )
            peer_sessions += await self._with_units(rows)
        chain_week: dict[str, int] = defaultdict(int)
        chain_prev: dict[str, int] = defaultdict(int)
        for room in week:
            for sku, units in week[room].items():
                chain_week[sku] += units
        for room in prev:
            for sku, units in prev[room].items():
                chain_prev[sku] += units
        trends = sorted(trending(chain_week, chain_prev))
        chain_sessions = await self._sessions_selling(trends, since, now)
        skus = set(trends) | {sku for s in own for sku in s.units}
        skus |= {sku for p in peers for sku in week.get(p.room_id, {})}
        items = await self._catalog.versions_of(skus)
        labels = {sku: (name, name) for sku, name in (names or {}).items()}
        for sku, versions in items.items():
            labels[sku] = (versions[-1].name, versions[-1].name_en or versions[-1].name)
        market = Market(
            room_id=room_id,
            own=own,
            peers=peers,
            peer_week={p.room_id: week.get(p.room_id, {}) for p in peers},
            peer_sessions=peer_sessions,
            chain_week=chain_week,
            chain_prev=chain_prev,
            chain_sessions=chain_sessions,
            listed=None if listed is None else frozenset(listed),
            names=labels,
        )
        return SuggestionList(room_id, now, audience_of(own), list(peers), rank(market, limit))

    async def _market(
        self, now: int
    ) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]], dict[str, dict[str, int]]]:
        """room → sku → units sold: over BASKET_DAYS, the last 7 days, the 7 before."""
        q = Query()
        week = q.arg(now - WEEK_DAYS * DAY_MS)
        prev = q.arg(now - 2 * WEEK_DAYS * DAY_MS)
        rows = await self._db.fetch(
            f"SELECT room_id, sku, SUM(qty), SUM(CASE WHEN created_at >= {week} THEN qty "
            f"ELSE 0 END), SUM(CASE WHEN created_at < {week} AND created_at >= {prev} "
            "THEN qty ELSE 0 END) FROM orders "
            f"WHERE created_at >= {q.arg(now - BASKET_DAYS * DAY_MS)} "
            f"AND created_at < {q.arg(now)} AND state IN ({q.args_in(SOLD_STATES)}) "
            "GROUP BY room_id, sku",
            q.args,
        )
        baskets: dict[str, dict[str, int]] = defaultdict(dict)
        this_week: dict[str, dict[str, int]] = defaultdict(dict)
        week_before: dict[str, dict[str, int]] = defaultdict(dict)
        for room, sku, total, last, before in rows:
            baskets[str(room)][str(sku)] = as_int(total)
            if as_int(last):
                this_week[str(room)][str(sku)] = as_int(last)
            if as_int(before):
                week_before[str(room)][str(sku)] = as_int(before)
        return dict(baskets), dict(this_week), dict(week_before)

    async def _with_units(self, rows: Sequence[tuple[object, ...]]) -> list[SessionUnits]:
        """Sessions (room_id, session_id, started_at, viewers) with their units per SKU."""
        units: dict[str, dict[str, int]] = defaultdict(dict)
        ids = [str(r[1]) for r in rows]
        for chunk in chunks(ids):
            q = Query()
            for session_id, sku, qty in await self._db.fetch(
                "SELECT session_id, sku, SUM(qty) FROM orders "
                f"WHERE session_id IN ({q.args_in(chunk)}) "
                f"AND state IN ({q.args_in(SOLD_STATES)}) GROUP BY session_id, sku",
                q.args,
            ):
                units[str(session_id)][str(sku)] = as_int(qty)
        out = [
            SessionUnits(str(r[0]), str(r[1]), as_int(r[2]), as_int(r[3]), units[str(r[1])])
            for r in rows
        ]
        out.sort(key=lambda s: (-s.started_at, s.session_id))
        return out

    async def _sessions_selling(
        self, skus: Sequence[str], since: int, now: int
    ) -> list[SessionUnits]:
        """Any store's ended sessions since `since` with the units they sold of `skus`."""
        found: dict[str, tuple[str, int, int, dict[str, int]]] = {}
        for chunk in chunks(skus):
            q = Query()
            for room, session_id, started, viewers, sku, qty in await self._db.fetch(
                "SELECT s.room_id, s.session_id, s.started_at, s.viewers, o.sku, SUM(o.qty) "
                "FROM orders o JOIN sessions s ON s.session_id = o.session_id "
                f"WHERE s.ended_at IS NOT NULL AND s.started_at >= {q.arg(since)} "
                f"AND s.started_at < {q.arg(now)} AND o.sku IN ({q.args_in(chunk)}) "
                f"AND o.state IN ({q.args_in(SOLD_STATES)}) "
                "GROUP BY s.room_id, s.session_id, s.started_at, s.viewers, o.sku",
                q.args,
            ):
                entry = found.setdefault(
                    str(session_id), (str(room), as_int(started), as_int(viewers), {})
                )
                entry[3][str(sku)] = as_int(qty)
        out = [SessionUnits(r, sid, st, v, u) for sid, (r, st, v, u) in found.items()]
        out.sort(key=lambda s: (-s.started_at, s.session_id))
        return out
