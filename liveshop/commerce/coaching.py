"""Coaching hints: deterministic, explainable rules over a room-metrics snapshot.

Pure: no I/O, no clock of its own (the caller passes `now_ms`). Each rule looks at
one `RoomMetrics` and returns at most a few candidate hints with a stable `code`, and
`render` writes zh-CN or en text. `stats.Broadcasters` gathers the metrics, holds back
what is within its per-(code, subject) cooldown `COOLDOWN_MS` (kept in Redis), and
sends the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from liveshop.core import protocol as p

FOCUS_MIN_INTERACTIONS = 5
FOCUS_FACTOR = 3.0
RELEASE_MIN_VIEWERS = 10
LOW_STOCK_FRACTION = 0.10
OFFER_ENDING_MS = 15_000
CONVERSION_MIN_VIEWERS = 20
CONVERSION_QUIET_MS = 180_000
LEAVING_WINDOW_MS = 120_000
LEAVING_DROP = 0.20
LEAVING_MIN_PEAK = 10
GROUP_NEAR_MISSING = 3  # a group this close to its threshold ...
GROUP_NEAR_MS = 5 * 60_000  # ... this close to its end: call for the last joins


@dataclass(frozen=True, slots=True)
class RoomMetrics:
    """What the rules may look at, all figures for the live session."""

    now_ms: int
    started_at: int
    viewers: int
    peak: int
    viewer_history: tuple[tuple[int, int], ...] = ()  # (ts_ms, viewers), oldest first
    interactions_60s: dict[str, int] = field(default_factory=dict)  # likes + chat mentions
    interactions_baseline: dict[str, float] = field(default_factory=dict)  # per minute, prior 5 min
    last_order_at: int | None = None
    units_by_sku: dict[str, int] = field(default_factory=dict)
    stock: dict[str, int] = field(default_factory=dict)
    stocked: dict[str, int] = field(default_factory=dict)
    offers: tuple[p.OfferState, ...] = ()
    pinned: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    groups: tuple[p.GroupState, ...] = ()
    polls: tuple[p.Poll, ...] = ()  # v1.1: open polls and those closed in the last minutes


@dataclass(frozen=True, slots=True)
class Candidate:
    code: str
    severity: p.Severity
    subject: str  # what the cooldown is keyed on (a sku, an offer id, or "room")
    sku: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    variant: str = ""  # picks another text of the same code (TEXTS key "<code>.<variant>")

    @property
    def text_key(self) -> str:
        return f"{self.code}.{self.variant}" if self.variant else self.code


TEXTS: dict[str, dict[str, str]] = {
    "focus_product": {
        "zh-CN": "当前「{name}」互动很高,建议重点讲解",
        "en": '"{name}" is getting a lot of interaction — talk about it now',
    },
    "release_offer": {
        "zh-CN": "在线人数达到峰值,可以放出最大优惠了",
        "en": "Viewers are at their peak — release your biggest offer now",
    },
    "low_stock": {
        "zh-CN": "「{name}」库存不足 10%(剩 {left} 件),提醒大家抓紧下单或准备补货",
        "en": '"{name}" is under 10% of its stock ({left} left) — urge buyers or restock',
    },
    "sold_out_switch": {
        "zh-CN": "「{name}」已售罄,建议切换到热卖的「{next}」",
        "en": '"{name}" is sold out — switch to the best seller "{next}"',
    },
    # Nothing else has sold yet: calling a product a best seller would be a lie.
    "sold_out_switch.other": {
        "zh-CN": "「{name}」已售罄,可以补货,或者改讲还有货的「{next}」",
        "en": '"{name}" is sold out — restock it, or feature "{next}", which is in stock',
    },
    "sold_out_switch.restock": {
        "zh-CN": "「{name}」已售罄,其他商品也没货了,建议马上补货",
        "en": '"{name}" is sold out and nothing else is in stock — restock to keep selling',
    },
    "offer_ending": {
        "zh-CN": "「{name}」秒杀还剩 {secs} 秒、{left} 件,快催单",
        "en": 'The "{name}" flash offer ends in {secs}s with {left} left — push now',
    },
    "conversion_drop": {
        "zh-CN": "{viewers} 人在看,但 3 分钟没有新订单,试试讲解价格或放个优惠",
        "en": "{viewers} watching but no order for 3 minutes — explain the price or offer a deal",
    },
    "viewers_leaving": {
        "zh-CN": "观众在流失(比峰值少 {drop}%),发个福袋留人",
        "en": "Viewers are leaving ({drop}% below the peak) — start a lucky draw to keep them",
    },
    "poll_winner": {
        "zh-CN": "投票第一的「{option}」有货({left} 件),现在上架",
        "en": 'The poll\'s winner "{option}" is in stock ({left} left) — feature it now',
    },
    "group_almost": {
        "zh-CN": "「{name}」还差 {need} 人成团,只剩 {mins} 分钟 — 现在喊一声",
        "en": '"{name}" group needs {need} more buyers with {mins} min left — call it out now',
    },
    "group_almost.units": {
        "zh-CN": "「{name}」还差 {need} 件成团,只剩 {mins} 分钟 — 现在喊一声",
        "en": '"{name}" group needs {need} more units with {mins} min left — call it out now',
    },
}

COOLDOWN_MS: dict[str, int] = {
    "focus_product": 120_000,
    "release_offer": 180_000,
    "low_stock": 300_000,
    "sold_out_switch": 600_000,
    "offer_ending": 60_000,
    "conversion_drop": 300_000,
    "viewers_leaving": 180_000,
    "group_almost": 120_000,
    "poll_winner": 600_000,  # keyed on the poll: once per poll
}


def _name(m: RoomMetrics, sku: str) -> str:
    return m.names.get(sku, sku)


def focus_product(m: RoomMetrics) -> list[Candidate]:
    if not m.interactions_60s:
        return []
    sku, recent = max(m.interactions_60s.items(), key=lambda kv: (kv[1], kv[0]))
    baseline = max(m.interactions_baseline.get(sku, 0.0), 1.0)
    if recent >= FOCUS_MIN_INTERACTIONS and recent >= FOCUS_FACTOR * baseline:
        return [Candidate("focus_product", "act_now", sku, sku, {"name": _name(m, sku)})]
    return []


def release_offer(m: RoomMetrics) -> list[Candidate]:
    if any(o.status == "live" for o in m.offers) or m.viewers < RELEASE_MIN_VIEWERS:
        return []
    if m.viewers < m.peak:
        return []
    earlier = [v for ts, v in m.viewer_history if m.now_ms - 60_000 <= ts <= m.now_ms - 10_000]
    if not earlier or m.viewers <= max(earlier):
        return []  # at the peak but not rising
    return [Candidate("release_offer", "act_now", "room")]


def low_stock(m: RoomMetrics) -> list[Candidate]:
    out = []
    # The live offers' SKUs, and the pinned one (None: no offer, watch its stock).
    watched: dict[str, p.OfferState | None] = {o.sku: o for o in m.offers if o.status == "live"}
    if m.pinned:
        watched.setdefault(m.pinned, None)
    for sku, offer in sorted(watched.items()):
        if offer is not None:
            left, start = offer.left, offer.qty
        else:
            left, start = m.stock.get(sku, 0), m.stocked.get(sku, 0)
        if start > 0 and 0 < left < LOW_STOCK_FRACTION * start:
            out.append(
                Candidate("low_stock", "info", sku, sku, {"name": _name(m, sku), "left": str(left)})
            )
    return out


def sold_out_switch(m: RoomMetrics) -> list[Candidate]:
    out = []
    in_stock = [s for s, left in m.stock.items() if left > 0]
    # Only a product that sold this session and can still be bought is a "best seller".
    sellers = [s for s in in_stock if m.units_by_sku.get(s, 0) > 0]
    for sku in sorted(m.units_by_sku):
        if m.stock.get(sku, 0) > 0 or m.units_by_sku[sku] <= 0:
            continue
        params = {"name": _name(m, sku)}
        if sellers:
            nxt = max(sellers, key=lambda s: (m.units_by_sku[s], s))
            variant = ""
        elif in_stock:
            nxt = max(in_stock, key=lambda s: (m.stock[s], s))  # the most units to sell
            variant = "other"
        else:
            nxt, variant = "", "restock"
        if nxt:
            params["next"] = _name(m, nxt)
        out.append(Candidate("sold_out_switch", "act_now", sku, sku, params, variant))
    return out


def offer_ending(m: RoomMetrics) -> list[Candidate]:
    out = []
    for o in m.offers:
        remaining = o.ends_at - m.now_ms
        if o.status == "live" and 0 < remaining < OFFER_ENDING_MS and o.left > 0:
            out.append(
                Candidate(
                    "offer_ending",
                    "act_now",
                    o.offer_id,
                    o.sku,
                    {
                        "name": _name(m, o.sku),
                        "secs": str(remaining // 1000),
                        "left": str(o.left),
                    },
                )
            )
    return out


def conversion_drop(m: RoomMetrics) -> list[Candidate]:
    if m.viewers < CONVERSION_MIN_VIEWERS:
        return []
    since = m.last_order_at if m.last_order_at is not None else m.started_at
    if m.now_ms - since < CONVERSION_QUIET_MS:
        return []
    return [Candidate("conversion_drop", "info", "room", None, {"viewers": str(m.viewers)})]


def viewers_leaving(m: RoomMetrics) -> list[Candidate]:
    window = [v for ts, v in m.viewer_history if m.now_ms - ts <= LEAVING_WINDOW_MS]
    if not window:
        return []
    top = max(window)
    if top < LEAVING_MIN_PEAK or m.viewers >= (1 - LEAVING_DROP) * top:
        return []
    drop = round(100 * (top - m.viewers) / top)
    return [Candidate("viewers_leaving", "info", "room", None, {"drop": str(drop)})]


def group_almost(m: RoomMetrics) -> list[Candidate]:
    """An open group a few joins short of its threshold in its last minutes."""
    out = []
    for g in m.groups:
        need = g.threshold - g.value
        remaining = g.ends_at - m.now_ms
        if g.status != "open" or not 0 < need <= GROUP_NEAR_MISSING:
            continue
        if not 0 < remaining <= GROUP_NEAR_MS:
            continue
        mins = str(max(1, -(-remaining // 60_000)))
        params = {"name": _name(m, g.sku), "need": str(need), "mins": mins}
        variant = "units" if g.metric == "units" else ""
        out.append(Candidate("group_almost", "act_now", g.group_id, g.sku, params, variant))
    return out


def winning_option(counts: list[int]) -> int | None:
    """The option with the most votes, None when nobody voted or the top is shared (the
    hint below and the session review's poll results)."""
    top = max(counts, default=0)
    if top == 0 or counts.count(top) > 1:
        return None
    return counts.index(top)


def poll_winner(m: RoomMetrics) -> list[Candidate]:
    """A closed poll with one clear winner that names a product in stock."""
    out = []
    for poll in m.polls:
        winner = winning_option(poll.counts) if poll.status == "closed" else None
        if winner is None:
            continue  # open, no votes, or a tie: no winner to act on
        option = poll.options[winner]
        # the option names a product ("海南贵妃芒"), or is part of its name ("荔枝")
        named = [sku for sku, name in m.names.items() if len(option) >= 2 and option in name]
        for sku in [*mentioned_skus(option, m.names), *named]:
            left = m.stock.get(sku, 0)
            if left > 0:
                params = {"option": option, "left": str(left)}
                out.append(Candidate("poll_winner", "act_now", poll.poll_id, sku, params))
                break
    return out


RULES: tuple[Callable[[RoomMetrics], list[Candidate]], ...] = (
    focus_product,
    release_offer,
    low_stock,
    sold_out_switch,
    offer_ending,
    conversion_drop,
    viewers_leaving,
    group_almost,
    poll_winner,
)


def render(c: Candidate, lang: p.Lang, now_ms: int) -> p.Hint:
    return p.Hint(
        code=c.code,
        text=TEXTS[c.text_key][lang].format(**c.params),
        lang=lang,
        severity=c.severity,
        sku=c.sku,
        ts=now_ms,
    )


def candidates(m: RoomMetrics) -> list[Candidate]:
    """Every rule's candidates for this snapshot, cooldowns not applied: those live in
    Redis (`stats.claim_hints`), so every process and every console reconnect shares them."""
    return [c for rule in RULES for c in rule(m)]


def mentioned_skus(text: str, names: dict[str, str]) -> list[str]:
    """SKUs a chat line talks about: by sku, full name, or the name's first word."""
    lowered = text.lower()
    hits = []
    for sku, name in names.items():
        short = name.split()[0] if name.split() else name
        if sku.lower() in lowered or name in text or (len(short) >= 2 and short in text):
            hits.append(sku)
    return hits
