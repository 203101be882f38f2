"""Suggestions for a store's next live over a designed chain in a real database: s1's own
last five sessions, a region peer (s2), two stores with a similar basket (s3, s5), one that
is not similar (s6), a trending SKU sold elsewhere (s4); the exact ranking, reasons and
forecasts; and the pure rules (peers, trend, forecast, ranking) on their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import pytest

from liveshop.commerce.catalog import Catalog
from liveshop.commerce.suggestions import (
    Market,
    Peer,
    SessionUnits,
    Suggestions,
    audience_of,
    forecast,
    percentile,
    rank,
    similar_stores,
    trending,
)
from liveshop.engine.database import Database
from tests.insights_support import DAY, HOUR, T0, add_catalog, add_order, add_session, history_db

NOW = T0 + 30 * DAY
REGIONS = {
    "s1": "east",
    "s2": "east",
    "s3": "west",
    "s4": "west",
    "s5": "north",
    "s6": "north",
    "s7": "east",
}


def ago(days: float) -> int:
    return NOW - int(days * DAY)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with history_db(tmp_path) as db:
        await add_catalog(db, "apple", "fruit", 1000, T0, name="红富士苹果")
        await add_catalog(db, "cherry", "fruit", 3000, T0, name="车厘子")

        async def session(room: str, days: float, viewers: int, sold: dict[str, int]) -> None:
            sid = f"{room}-{days}"
            await add_session(db, room, sid, ago(days), viewers=viewers)
            for sku, qty in sold.items():
                await add_order(db, room, sid, f"u-{room}", sku, qty, 1000, ago(days) + HOUR)

        # s1: durian 10 days ago (not among its last five), then five sessions; its
        # audience's median is 100; apple per viewer .05 .1 .15 .1 .2 (median .1, p25 .1,
        # p75 .15); milk in two of them.
        await session("s1", 10, 70, {"durian": 5})
        await session("s1", 5, 80, {"apple": 4})
        await session("s1", 4, 100, {"apple": 10, "milk": 5})
        await session("s1", 3, 120, {"apple": 18})
        await session("s1", 2, 100, {"apple": 10, "milk": 3})
        await session("s1", 1, 90, {"apple": 18})
        # s2 (east): pear 30 in the last 7 days (a cancelled 100 does not count), apple 5
        await session("s2", 6, 200, {"pear": 20, "apple": 5})
        await session("s2", 2, 100, {"pear": 10})
        await add_order(
            db, "s2", "s2-2", "u-x", "pear", 100, 1000, ago(2) + HOUR, state="cancelled"
        )
        # s3 (west): apple 10 days ago, grape in the last 7 (cosine with s1 0.917)
        await session("s3", 10, 100, {"apple": 30})
        await session("s3", 3, 60, {"grape": 12})
        # s5 (north): apples only, 9 days ago (cosine 0.988)
        await session("s5", 9, 100, {"apple": 20})
        # s6 (north): milk only (cosine 0.13: not similar)
        await session("s6", 2, 50, {"milk": 10})
        # s4 (west): cherry 10 in the week before, 40 in the last 7 days: trending
        await session("s4", 8, 50, {"cherry": 10})
        await session("s4", 4, 100, {"cherry": 40})
        yield db


async def test_a_store_gets_its_own_region_basket_and_trend_suggestions(db: Database) -> None:
    found = await Suggestions(db, Catalog(db)).for_room(
        "s1", now=NOW, regions=REGIONS, listed=["apple", "milk"], names={"apple": "苹果"}
    )
    assert found.audience == 100
    assert found.peers == [
        Peer("s2", "region", 0.162),
        Peer("s7", "region", 0.0),  # a store of the region without sales yet
        Peer("s5", "basket", 0.988),
        Peer("s3", "basket", 0.917),
    ]
    ranked = [
        (s.sku, s.score, s.forecast.expected, s.forecast.low, s.forecast.high)
        for s in found.suggestions
    ]
    assert ranked == [
        ("cherry", 45.0, 30, 20, 40),  # chain: .2 and .4 per viewer × 100, × 1.5 trending
        ("pear", 15.0, 10, 10, 10),  # region: .1 and .1 per viewer × 100, × 1.5 trending
        ("apple", 10.0, 10, 10, 15),  # own: median .1, p25 .1, p75 .15 × 100
        ("grape", 10.0, 10, 0, 20),  # basket: s3's 0 and .2 per viewer, ties apple: by sku
        ("milk", 0.0, 0, 0, 3),  # own: sold in 2 of 5 (median 0)
    ]
    cherry, pear, apple, grape, milk = found.suggestions
    assert (cherry.name, cherry.listed, cherry.forecast.basis) == ("车厘子", False, "chain")
    assert cherry.reason == "全链近 7 天售出 40 件，比前 7 天的 10 件增长 300%，本店未上架"
    assert cherry.reason_en == (
        "40 sold chain-wide in the last 7 days, up 300% from 10; not on this store's shelf"
    )
    assert cherry.forecast.rule == (
        "依据全链近 14 天卖过它的 2 场：每百位观众买 30.0 件（中位数）× 预计观众 100 人；"
        "区间为最低到最高"
    )
    assert pear.reason == "同区域 1 家门店近 7 天售出 30 件，本店未上架"
    assert [r.code for r in pear.reasons] == ["region", "trend"]
    assert pear.reasons[1].text == "全链近 7 天售出 30 件，前 7 天没有销量，本店未上架"
    assert (pear.name, pear.forecast.basis, pear.forecast.sessions) == ("pear", "peers", 2)
    assert (apple.name, apple.listed) == ("红富士苹果", True)  # the catalog's name wins
    assert apple.reason == "本店近 5 场售出 60 件（5 场有销量）"
    assert [(r.code, r.numbers) for r in apple.reasons] == [
        ("own", {"units": 60, "sessions": 5, "with_sales": 5}),
        ("region", {"units": 5, "stores": 1}),  # s5's and s3's apples are older than 7 days
    ]
    assert apple.forecast.rule_en == (
        "From this store's last 5 sessions: 10.0 units per 100 viewers (median) × 100"
        " expected viewers; range p25–p75"
    )
    assert grape.reason == "购物篮相似的 1 家门店（相似度最高 0.92）近 7 天售出 12 件，本店未上架"
    assert grape.reasons[0].numbers == {"units": 12, "stores": 1, "similarity": 0.917}
    assert milk.reason == "本店近 5 场售出 8 件（2 场有销量）"
    assert "durian" not in {s.sku for s in found.suggestions}  # 10 days ago: not in the last 5
    again = await Suggestions(db, Catalog(db)).for_room(
        "s1", now=NOW, regions=dict(reversed(REGIONS.items())), listed=["milk", "apple"]
    )
    assert [s.sku for s in again.suggestions] == ["cherry", "pear", "apple", "grape", "milk"]
    top = await Suggestions(db, Catalog(db)).for_room("s1", now=NOW, regions=REGIONS, limit=2)
    assert [(s.sku, s.listed) for s in top.suggestions] == [("cherry", None), ("pear", None)]
    assert top.suggestions[1].reason == "同区域 1 家门店近 7 天售出 30 件，本店近 5 场未售出"


async def test_a_new_store_goes_by_its_regions_sessions_unscaled(db: Database) -> None:
    found = await Suggestions(db, Catalog(db)).for_room("s7", now=NOW, regions=REGIONS)
    assert found.audience is None
    assert [(p.room_id, p.kind) for p in found.peers] == [("s1", "region"), ("s2", "region")]
    by_sku = {s.sku: s for s in found.suggestions}
    # durian: s1 sold it 10 days ago, outside "the last 7 days" of a peer's sales
    assert [s.sku for s in found.suggestions] == ["cherry", "pear", "apple", "milk"]
    apple = by_sku["apple"]
    # s1's six sessions and s2's two: units 0 0 4 5 10 10 18 18 → median 7.5, p25 3, p75 12
    assert (apple.forecast.expected, apple.forecast.low, apple.forecast.high) == (8, 3, 12)
    assert (apple.forecast.basis, apple.forecast.sessions, apple.forecast.audience) == (
        "peers",
        8,
        None,
    )
    assert apple.forecast.rule == (
        "依据卖过它的相似门店近 14 天的 8 场：每场件数的中位数（无观众数可换算）；"
        "区间为 25%–75% 分位"
    )
    assert apple.reason == "同区域 2 家门店近 7 天售出 65 件，本店还没有直播过"
    cherry = by_sku["cherry"]
    assert (cherry.forecast.expected, cherry.forecast.low, cherry.forecast.high) == (25, 10, 40)
    milk = by_sku["milk"]  # s1's 5 and 3 among its six sessions: median 0, p75 2.25
    assert (milk.forecast.expected, milk.forecast.low, milk.forecast.high) == (0, 0, 3)


# -- the rules alone -------------------------------------------------------------------


def session(room: str, sid: str, viewers: int, **units: int) -> SessionUnits:
    return SessionUnits(room, sid, 0, viewers, units)


def test_a_basket_peer_needs_a_cosine_of_one_half_and_only_three_are_kept() -> None:
    baskets = {
        "me": {"x": 1, "y": 1},
        "half": {"x": 1, "z": 1},  # cosine exactly 0.5
        "less": {"x": 1, "z": 2},  # 0.316
        "same-a": {"x": 2, "y": 2},
        "same-b": {"x": 3, "y": 3},
        "near": {"x": 1, "y": 1},  # as similar as the two above, but in the region
    }
    regions = {"me": "r", "near": "r", "half": "", "less": "", "same-a": "q", "same-b": "q"}
    peers = similar_stores("me", regions, baskets)
    assert peers == [
        Peer("near", "region", 1.0),
        Peer("same-a", "basket", 1.0),  # ties by room id
        Peer("same-b", "basket", 1.0),
        Peer("half", "basket", 0.5),
    ]
    baskets["same-c"] = {"x": 5, "y": 5}
    assert [p.room_id for p in similar_stores("me", regions, baskets)][1:] == [
        "same-a",
        "same-b",
        "same-c",
    ]
    assert similar_stores("nobody", {}, baskets) == []  # no basket of its own: no cosine


def test_a_store_without_a_region_has_no_region_peers() -> None:
    assert similar_stores("me", {"me": "", "other": ""}, {}) == []


def test_trending_needs_twenty_units_and_half_as_many_again() -> None:
    assert trending({"a": 20, "b": 19, "c": 21, "d": 30}, {"a": 13, "c": 15, "d": 0}) == {
        "a": (20, 13),  # 20 ≥ 19.5
        "d": (30, 0),
    }


def test_percentiles_interpolate_between_ranks() -> None:
    values = [Fraction(v) for v in (0, 0, 4, 5, 10, 10, 18, 18)]
    assert percentile(values, Fraction(1, 4)) == 3
    assert percentile(values, Fraction(1, 2)) == Fraction(15, 2)
    assert percentile(values, Fraction(3, 4)) == 12
    assert percentile([Fraction(7)], Fraction(1, 2)) == 7


def test_the_forecast_scales_units_per_viewer_to_the_audience() -> None:
    fc = forecast([(5, 100), (15, 100)], 50, "own")  # .05 and .15 per viewer: 2 sessions
    assert (fc.expected, fc.low, fc.high, fc.audience, fc.sessions) == (5, 2, 8, 50, 2)
    # rounding: half up for the point, outwards for the range
    fc = forecast([(1, 4), (1, 4), (1, 4), (1, 4)], 10, "own")
    assert (fc.expected, fc.low, fc.high) == (3, 2, 3)
    fc = forecast([(3, 0), (5, 0)], 100, "peers")  # no viewers to divide by: units
    assert (fc.expected, fc.low, fc.high, fc.audience) == (4, 3, 5, None)
    assert forecast([], 100, "chain").basis == "none"


def test_the_audience_is_the_median_of_the_stores_sessions() -> None:
    assert audience_of([session("a", "1", 80), session("a", "2", 101)]) == 91  # 90.5 → 91
    assert audience_of([]) is None
    assert audience_of([session("a", "1", 0)]) is None


def test_the_ranking_is_deterministic_and_ties_go_by_sku() -> None:
    own = [session("me", "1", 10, b=1, a=1), session("me", "2", 10, a=1, b=1)]
    market = Market(
        room_id="me",
        own=own,
        peers=[],
        peer_week={},
        peer_sessions=[],
        chain_week={},
        chain_prev={},
        chain_sessions=[],
    )
    first = rank(market)
    assert [s.sku for s in first] == ["a", "b"]
    assert rank(market) == first
    assert rank(market, limit=1) == first[:1]


def test_a_sku_whose_range_tops_out_at_zero_is_left_out() -> None:
    # b sold in one of five sessions: its p75 is 0 per viewer, so even the range says 0
    own = [session("me", str(i), 10, a=2) for i in range(4)] + [session("me", "4", 10, a=2, b=5)]
    market = Market("me", own, [], {}, [], {}, {}, [])
    assert [(s.sku, s.forecast.expected) for s in rank(market)] == [("a", 2)]
