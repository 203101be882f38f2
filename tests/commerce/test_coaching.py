"""Coaching rules: each fires on its scenario, stays silent on a near-miss, and the
cooldown holds. Pure functions over synthetic metrics and a fake clock."""

from __future__ import annotations

import pytest

from liveshop.commerce import coaching as c
from liveshop.commerce.rooms import offer_from_hash
from liveshop.core import protocol as p

NOW = 1_767_950_000_000
NAMES = {"lychee": "岭南荔枝 500g", "mango": "海南贵妃芒", "milk": "鲜牛奶 1L"}


def poll(counts: list[int], status: str = "closed") -> p.Poll:
    return p.Poll(
        poll_id="p1",
        question="下一个上什么?",
        options=["荔枝", "海南贵妃芒", "牛奶"],
        counts=counts,
        ends_at=NOW - 1000,
        status=status,  # type: ignore[arg-type]
    )


def metrics(**kw: object) -> c.RoomMetrics:
    base: dict[str, object] = {
        "now_ms": NOW,
        "started_at": NOW - 600_000,
        "viewers": 50,
        "peak": 80,
        "last_order_at": NOW - 10_000,
        "names": NAMES,
        "stock": {"lychee": 100, "mango": 50, "milk": 20},
        "stocked": {"lychee": 200, "mango": 50, "milk": 20},
    }
    base.update(kw)
    return c.RoomMetrics(**base)  # type: ignore[arg-type]


def offer(**kw: object) -> p.OfferState:
    base: dict[str, object] = {
        "offer_id": "of_1",
        "sku": "lychee",
        "price": 990,
        "qty": 100,
        "left": 50,
        "per_user_limit": 1,
        "starts_at": NOW - 60_000,
        "ends_at": NOW + 120_000,
        "status": "live",
    }
    base.update(kw)
    return p.OfferState(**base)  # type: ignore[arg-type]


def group(**kw: object) -> p.GroupState:
    base: dict[str, object] = {
        "group_id": "g_1",
        "sku": "lychee",
        "price": 1490,
        "metric": "buyers",
        "threshold": 10,
        "value": 7,
        "cap": 50,
        "ends_at": NOW + 300_000,
        "status": "open",
    }
    base.update(kw)
    return p.GroupState(**base)  # type: ignore[arg-type]


def codes(m: c.RoomMetrics) -> list[str]:
    return [cand.code for rule in c.RULES for cand in rule(m)]


CASES = [
    # (code, firing metrics, near-miss metrics)
    (
        "focus_product",
        metrics(interactions_60s={"lychee": 12, "mango": 2}, interactions_baseline={"lychee": 3.0}),
        metrics(interactions_60s={"lychee": 8}, interactions_baseline={"lychee": 3.0}),
    ),
    (
        "release_offer",
        metrics(viewers=90, peak=90, viewer_history=((NOW - 30_000, 70), (NOW - 1000, 88))),
        metrics(viewers=90, peak=90, viewer_history=((NOW - 30_000, 90),)),
    ),
    (
        "low_stock",
        metrics(pinned="lychee", stock={"lychee": 19, "mango": 50, "milk": 20}),
        metrics(pinned="lychee", stock={"lychee": 20, "mango": 50, "milk": 20}),
    ),
    (
        "sold_out_switch",
        metrics(
            stock={"lychee": 0, "mango": 50, "milk": 20}, units_by_sku={"lychee": 200, "milk": 3}
        ),
        metrics(
            stock={"lychee": 1, "mango": 50, "milk": 20}, units_by_sku={"lychee": 199, "milk": 3}
        ),
    ),
    (
        "offer_ending",
        metrics(offers=(offer(ends_at=NOW + 14_000),)),
        metrics(offers=(offer(ends_at=NOW + 15_000),)),
    ),
    (
        "conversion_drop",
        metrics(viewers=30, last_order_at=NOW - 181_000),
        metrics(viewers=30, last_order_at=NOW - 179_000),
    ),
    (
        "viewers_leaving",
        metrics(viewers=39, viewer_history=((NOW - 60_000, 50), (NOW - 1000, 45))),
        metrics(viewers=41, viewer_history=((NOW - 60_000, 50), (NOW - 1000, 45))),
    ),
    (
        "poll_winner",  # the winner names a product in stock; a tie names no winner
        metrics(polls=(poll([3, 9, 1]),)),
        metrics(polls=(poll([9, 9, 1]),)),
    ),
    (
        "poll_winner",  # the winner sold out, or the poll still open: nothing to feature
        metrics(polls=(poll([9, 1, 1]),)),
        metrics(polls=(poll([1, 9, 1]),), stock={"lychee": 100, "mango": 0, "milk": 20}),
    ),
    (
        "poll_winner",
        metrics(polls=(poll([9, 1, 1]),)),
        metrics(polls=(poll([9, 1, 1], status="open"),)),
    ),
    (
        "group_almost",  # 3 short with 5 min left; 4 short is not yet the last call
        metrics(groups=(group(value=7),)),
        metrics(groups=(group(value=6),)),
    ),
]


@pytest.mark.parametrize(("code", "fires", "near_miss"), CASES, ids=[x[0] for x in CASES])
def test_rule_fires_on_its_scenario_and_not_on_a_near_miss(
    code: str, fires: c.RoomMetrics, near_miss: c.RoomMetrics
) -> None:
    assert code in codes(fires)
    assert code not in codes(near_miss)


def test_every_rule_has_a_case_and_texts_in_both_languages() -> None:
    assert {x[0] for x in CASES} == {k.split(".")[0] for k in c.TEXTS} == set(c.COOLDOWN_MS)
    assert all(set(t) == {"zh-CN", "en"} for t in c.TEXTS.values())


def test_focus_product_names_the_product_in_the_listeners_language() -> None:
    m = metrics(interactions_60s={"lychee": 12})
    (cand,) = c.focus_product(m)
    zh = c.render(cand, "zh-CN", NOW)
    assert zh.text == "当前「岭南荔枝 500g」互动很高,建议重点讲解"
    assert zh.severity == "act_now" and zh.sku == "lychee"
    assert "岭南荔枝 500g" in c.render(cand, "en", NOW).text


def test_sold_out_switch_suggests_the_best_seller_with_stock() -> None:
    m = metrics(
        stock={"lychee": 0, "mango": 50, "milk": 20},
        units_by_sku={"lychee": 200, "milk": 7, "mango": 2},
    )
    (cand,) = c.sold_out_switch(m)
    assert cand.params["next"] == NAMES["milk"]


def test_sold_out_switch_never_calls_an_unsold_product_a_best_seller() -> None:
    # mango and milk are in stock but sold nothing; lychee sold out
    m = metrics(stock={"lychee": 0, "mango": 50, "milk": 20}, units_by_sku={"lychee": 200})
    (cand,) = c.sold_out_switch(m)
    zh, en = c.render(cand, "zh-CN", NOW).text, c.render(cand, "en", NOW).text
    assert "热卖" not in zh and "best seller" not in en
    assert zh == "「岭南荔枝 500g」已售罄,可以补货,或者改讲还有货的「海南贵妃芒」"
    assert "restock" in en and '"海南贵妃芒"' in en


def test_sold_out_switch_skips_best_sellers_that_are_sold_out_too() -> None:
    m = metrics(
        stock={"lychee": 0, "mango": 0, "milk": 20}, units_by_sku={"lychee": 200, "mango": 50}
    )
    texts = [c.render(x, "zh-CN", NOW).text for x in c.sold_out_switch(m)]
    assert texts and all("热卖" not in t and "鲜牛奶 1L" in t for t in texts)


def test_sold_out_switch_with_nothing_in_stock_says_restock() -> None:
    m = metrics(stock={"lychee": 0, "mango": 0, "milk": 0}, units_by_sku={"lychee": 200})
    (cand,) = c.sold_out_switch(m)
    assert "补货" in c.render(cand, "zh-CN", NOW).text
    assert "best seller" not in (en := c.render(cand, "en", NOW).text) and "restock" in en


def test_release_offer_is_silent_while_an_offer_is_live() -> None:
    m = metrics(viewers=90, peak=90, viewer_history=((NOW - 30_000, 70),), offers=(offer(),))
    assert c.release_offer(m) == []


def test_low_stock_watches_offer_units_against_the_offer_size() -> None:
    assert c.low_stock(metrics(offers=(offer(qty=100, left=9),)))
    assert not c.low_stock(metrics(offers=(offer(qty=100, left=10),)))
    assert not c.low_stock(metrics(offers=(offer(qty=100, left=0),)))  # sold out is another hint


def test_candidates_carry_no_cooldown_of_their_own() -> None:
    # The cooldown lives in Redis (tests/commerce/test_stats.py): the rules stay pure and
    # say the same thing for the same figures, whoever asks and however often.
    m = metrics(interactions_60s={"lychee": 12})
    assert [x.code for x in c.candidates(m)] == ["focus_product"]
    assert c.candidates(m) == c.candidates(m)


def test_chat_mentions_map_to_skus() -> None:
    assert c.mentioned_skus("岭南荔枝还有吗", NAMES) == ["lychee"]
    assert c.mentioned_skus("MANGO please", {"mango": "Mango"}) == ["mango"]
    assert c.mentioned_skus("你好", NAMES) == []


def test_an_offer_hash_with_an_unknown_status_is_refused() -> None:
    fields = {
        "offer_id": "of_1",
        "sku": "s",
        "price": "1",
        "qty": "1",
        "left": "1",
        "per_user_limit": "1",
        "starts_at": "0",
        "ends_at": "1",
    }
    assert offer_from_hash({**fields, "status": "live"}).status == "live"
    with pytest.raises(ValueError, match="unknown status 'paused'"):
        offer_from_hash({**fields, "status": "paused"})


def test_group_almost_says_how_many_and_how_long_and_only_for_open_groups() -> None:
    (cand,) = c.group_almost(metrics(groups=(group(ends_at=NOW + 299_000),)))
    assert (
        c.render(cand, "zh-CN", NOW).text
        == "「岭南荔枝 500g」还差 3 人成团,只剩 5 分钟 — 现在喊一声"
    )
    (units,) = c.group_almost(metrics(groups=(group(metric="units", value=8),)))
    assert "还差 2 件成团" in c.render(units, "zh-CN", NOW).text
    assert c.group_almost(metrics(groups=(group(ends_at=NOW + 301_000),))) == []  # too early
    assert c.group_almost(metrics(groups=(group(value=10, status="succeeded"),))) == []
