"""The rules that tag a store's customers (顾客标签): 高频购买, 品类偏好:<category>,
价格敏感. Pure: a customer's sold orders in a window, the window's last sessions and HQ's
catalog in, tags out, each tag carrying the rule that set it (zh and en) and the numbers
it was judged on. The thresholds are the constants below (docs/insights.md explains them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from liveshop.commerce.catalog import CatalogItem

# 高频购买: orders in at least FREQUENT_MIN of the window's last FREQUENT_SESSIONS sessions.
FREQUENT_SESSIONS = 5
FREQUENT_MIN = 3
# 品类偏好:<category>: at least this share of the customer's units in one catalog category,
# out of at least that many units (fewer units say nothing about a preference).
CATEGORY_SHARE_PCT = 60
CATEGORY_MIN_UNITS = 3
# 价格敏感: at least this share of the units bought at a deal (a flash offer, a group, or a
# unit price below HQ's base price of the time), out of at least that many units.
DEAL_SHARE_PCT = 70
DEAL_MIN_UNITS = 3


class Tag(msgspec.Struct, frozen=True):
    code: str  # frequent | category | price_sensitive
    label: str
    label_en: str
    rule: str  # the rule and this customer's numbers, in words
    rule_en: str
    numbers: dict[str, int | str]


def rules() -> dict[str, int]:
    return {
        "frequent_sessions": FREQUENT_SESSIONS,
        "frequent_min": FREQUENT_MIN,
        "category_share_pct": CATEGORY_SHARE_PCT,
        "category_min_units": CATEGORY_MIN_UNITS,
        "deal_share_pct": DEAL_SHARE_PCT,
        "deal_min_units": DEAL_MIN_UNITS,
    }


def floor_pct(part: int, whole: int) -> int:
    """A share in whole percent, rounded down: a text never shows a share that reaches a
    threshold the exact share misses."""
    return 100 * part // whole if whole else 0


def version_at(versions: Sequence[CatalogItem], at: int) -> CatalogItem | None:
    """The SKU's catalog version in force at `at` (the newest created by then); an order
    older than the SKU's first version takes that first one."""
    ordered = sorted(versions, key=lambda v: v.version)
    found = [v for v in ordered if v.created_at <= at]
    return found[-1] if found else (ordered[0] if ordered else None)


@dataclass(frozen=True, slots=True)
class Line:
    """One sold order of a customer in the window."""

    session_id: str
    sku: str
    qty: int
    unit_price: int
    offer_id: str | None
    group_id: str | None
    created_at: int


def deal_kind(line: Line, entry: CatalogItem | None) -> str | None:
    """Why an order counts as bought at a deal: `offer` (a flash offer's price), `group`
    (a group's price), `below_base` (under HQ's base price of the time), else None."""
    if line.offer_id:
        return "offer"
    if line.group_id:
        return "group"
    if entry is not None and line.unit_price < entry.base_price:
        return "below_base"
    return None


def frequent_tag(bought_in: int, of: int) -> Tag | None:
    """高频购买: orders in ≥ FREQUENT_MIN of the last `of` (≤ FREQUENT_SESSIONS) sessions."""
    if bought_in < FREQUENT_MIN:
        return None
    return Tag(
        "frequent",
        "高频购买",
        "Frequent buyer",
        f"近 {of} 场直播中有 {bought_in} 场下单"
        f"（规则：近 {FREQUENT_SESSIONS} 场中至少 {FREQUENT_MIN} 场）",
        f"Bought in {bought_in} of the last {of} sessions"
        f" (rule: at least {FREQUENT_MIN} of the last {FREQUENT_SESSIONS})",
        {"sessions": bought_in, "of": of, "min": FREQUENT_MIN},
    )


def category_tag(by_category: Mapping[str, int], units: int) -> Tag | None:
    """品类偏好:<category>: one category holds ≥ CATEGORY_SHARE_PCT % of `units` (every
    unit the customer bought, those of SKUs outside the catalog included), units ≥
    CATEGORY_MIN_UNITS. Above half, at most one category can qualify."""
    if units < CATEGORY_MIN_UNITS or not by_category:
        return None
    category, top = min(by_category.items(), key=lambda kv: (-kv[1], kv[0]))
    if 100 * top < CATEGORY_SHARE_PCT * units:
        return None
    share = floor_pct(top, units)
    return Tag(
        "category",
        f"品类偏好:{category}",
        f"Prefers {category}",
        f"{units} 件中有 {top} 件（{share}%）是「{category}」"
        f"（规则：至少 {CATEGORY_MIN_UNITS} 件，其中 ≥ {CATEGORY_SHARE_PCT}% 同一品类）",
        f"{top} of {units} units ({share}%) were {category}"
        f" (rule: ≥ {CATEGORY_SHARE_PCT}% of at least {CATEGORY_MIN_UNITS} units in one category)",
        {"category": category, "units": top, "of": units, "share_pct": share},
    )


def price_tag(by_kind: Mapping[str, int], units: int) -> Tag | None:
    """价格敏感: units bought at a deal (`deal_kind`) are ≥ DEAL_SHARE_PCT % of `units`,
    units ≥ DEAL_MIN_UNITS."""
    deal = sum(by_kind.values())
    if units < DEAL_MIN_UNITS or 100 * deal < DEAL_SHARE_PCT * units:
        return None
    share = floor_pct(deal, units)
    return Tag(
        "price_sensitive",
        "价格敏感",
        "Price-sensitive",
        f"{units} 件中有 {deal} 件（{share}%）是秒杀价、拼团价或低于总部基础价买的"
        f"（规则：至少 {DEAL_MIN_UNITS} 件，其中 ≥ {DEAL_SHARE_PCT}%）",
        f"{deal} of {units} units ({share}%) were bought at a flash-offer or group price"
        f" or below HQ's base price (rule: ≥ {DEAL_SHARE_PCT}% of at least {DEAL_MIN_UNITS})",
        {
            "units": deal,
            "of": units,
            "share_pct": share,
            "offer": by_kind.get("offer", 0),
            "group": by_kind.get("group", 0),
            "below_base": by_kind.get("below_base", 0),
        },
    )


def customer_tags(
    lines: Sequence[Line],
    recent_sessions: Sequence[str],
    catalog: Mapping[str, Sequence[CatalogItem]],
) -> list[Tag]:
    """Every tag one customer earns from their window's orders. `recent_sessions`: the
    window's last FREQUENT_SESSIONS sessions (fewer if the window has fewer)."""
    recent = set(recent_sessions)
    bought_in = len({line.session_id for line in lines} & recent)
    units = sum(line.qty for line in lines)
    by_category: dict[str, int] = defaultdict(int)
    by_kind: dict[str, int] = defaultdict(int)
    for line in lines:
        entry = version_at(catalog.get(line.sku, ()), line.created_at)
        if entry is not None:
            by_category[entry.category] += line.qty
        kind = deal_kind(line, entry)
        if kind is not None:
            by_kind[kind] += line.qty
    found = (
        frequent_tag(bought_in, len(recent)),
        category_tag(by_category, units),
        price_tag(by_kind, units),
    )
    return [tag for tag in found if tag is not None]
