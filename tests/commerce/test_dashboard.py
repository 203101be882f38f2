"""The store's dashboard and HQ's chain-wide one over a designed history in a real
database: two stores, six sessions of s1 (one before the window, one still live), buyers
whose figures and tags are known in advance; and the tag rules on their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from liveshop.commerce.catalog import Catalog, CatalogItem
from liveshop.commerce.customer_tags import (
    Line,
    category_tag,
    customer_tags,
    deal_kind,
    frequent_tag,
    price_tag,
    version_at,
)
from liveshop.commerce.dashboard import Dashboard, Figures, Window, ratio
from liveshop.engine.database import Database
from tests.insights_support import DAY, HOUR, T0, add_catalog, add_order, add_session, history_db

S1 = "s1"
S2 = "s2"


def day(n: float) -> int:
    return T0 + int(n * DAY)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """The designed history (numbers in comments are what the tests assert)."""
    async with history_db(tmp_path) as db:
        # HQ's catalog: apple's base price drops from 10.00 to 8.00 on day 3.5.
        await add_catalog(db, "apple", "fruit", 1000, day(-10), name="红富士苹果")
        await add_catalog(db, "apple", "fruit", 800, day(3.5), name="红富士苹果")
        await add_catalog(db, "pear", "fruit", 600, day(-10), name="砀山梨")
        await add_catalog(db, "milk", "dairy", 1200, day(-10), name="鲜牛奶")
        # (local-egg is the store's own product: not in the catalog)
        # s1: day 0 (before the window), days 1-5, and day 6 still live.
        for d, viewers in ((0, 10), (1, 20), (2, 30), (3, 40), (4, 50), (5, 60)):
            await add_session(db, S1, f"s1-d{d}", day(d), viewers=viewers)
        await add_session(db, S1, "s1-d6", day(6), viewers=0, ended=False)

        async def buy(d: int, user: str, sku: str, qty: int, price: int, **kw: str) -> None:
            await add_order(db, S1, f"s1-d{d}", user, sku, qty, price, day(d) + HOUR, **kw)

        await buy(0, "alice", "apple", 1, 1000)
        # alice: 4 of the last 5 sessions; 6 of 7 units fruit; 5 of 7 at a deal (3 apples
        # under the base price of day 1, 2 pears at an offer; day 4's apple at 9.00 is
        # above the new base 8.00). GMV 2700 + 1000 + 900 + 1200 = 5800.
        await buy(1, "alice", "apple", 3, 900)
        await buy(2, "alice", "milk", 1, 1200, state="cancelled")
        await buy(3, "alice", "pear", 2, 500, offer_id="of-1")
        await buy(4, "alice", "apple", 1, 900)
        await buy(5, "alice", "milk", 1, 1200)
        # bob: sessions 2 and 5 (a repeat buyer), 3 of 4 units dairy. GMV 4200.
        await buy(2, "bob", "milk", 2, 1200)
        await buy(5, "bob", "milk", 1, 1200)
        await buy(5, "bob", "pear", 1, 600, state="delivered")
        # carol: mostly the store's own eggs, 1 of 6 fruit, no deal. GMV 2500.
        await buy(3, "carol", "local-egg", 5, 300)
        await buy(3, "carol", "apple", 1, 1000, state="ready")
        # dave: 3 of 3 units at a deal (a group, an offer), all fruit. GMV 1500.
        await buy(5, "dave", "pear", 2, 400, group_id="g-1")
        await buy(5, "dave", "apple", 1, 700, offer_id="of-2")
        # erin: 2 units at an offer: too few units for any tag. GMV 1400.
        await buy(4, "erin", "apple", 2, 700, offer_id="of-3", state="accepted")
        # frank: GMV 1500 like dave (sorted after him by user id).
        await buy(2, "frank", "milk", 1, 1500, state="paid")
        # not sold: awaiting payment, a group still pending, an order of the live session
        await buy(5, "gina", "milk", 1, 1200, state="awaiting_payment")
        await buy(5, "hank", "pear", 1, 400, state="pending_group", group_id="g-2")
        await buy(6, "ivan", "apple", 5, 1000)
        # s2: two sessions; alice buys here too, zoe twice.
        await add_session(db, S2, "s2-d2", day(2), viewers=100)
        await add_session(db, S2, "s2-d4", day(4), viewers=50)
        await add_order(db, S2, "s2-d2", "alice", "apple", 1, 1000, day(2) + HOUR)
        await add_order(db, S2, "s2-d2", "zoe", "milk", 10, 1200, day(2) + HOUR)
        await add_order(db, S2, "s2-d4", "zoe", "milk", 1, 1200, day(4) + HOUR)
        yield db


WINDOW = Window(since=day(1))
S1_FIGURES = Figures(
    sessions=5,
    viewers=200,
    buyers=6,
    buyer_sessions=10,  # alice 4, bob 2, carol, dave, erin, frank 1 each
    conversion=0.05,
    orders=13,
    units=23,
    gmv=16900,
    new_buyers=5,
    returning_buyers=1,  # alice bought on day 0, before the window
    repeat_buyers=2,  # alice, bob
    repurchase_rate=round(2 / 6, 4),
)


async def test_a_stores_figures_count_sold_orders_of_its_ended_sessions(db: Database) -> None:
    board = await Dashboard(db, Catalog(db)).room(S1, WINDOW)
    assert board.figures == S1_FIGURES
    assert board.window == Window(since=day(1), until=None, start=day(1))
    assert [s.session_id for s in board.sessions] == [f"s1-d{d}" for d in (5, 4, 3, 2, 1)]
    d5 = board.sessions[0]
    # day 5: alice 1 milk, bob 1 milk + 1 pear, dave 2 pears + 1 apple (gina, hank: unsold)
    assert (d5.viewers, d5.buyers, d5.orders, d5.units, d5.gmv) == (60, 3, 5, 6, 4500)
    d2 = board.sessions[3]
    assert (d2.buyers, d2.orders, d2.units, d2.gmv) == (2, 2, 3, 3900)  # alice's cancelled


async def test_best_sellers_rank_by_units_then_gmv_then_sku(db: Database) -> None:
    board = await Dashboard(db, Catalog(db)).room(S1, WINDOW)
    assert [(b.sku, b.units, b.gmv, b.buyers) for b in board.best_sellers] == [
        ("apple", 8, 6700, 4),
        ("milk", 5, 6300, 3),  # ties with pear and the eggs on units, wins on GMV
        ("pear", 5, 2400, 3),
        ("local-egg", 5, 1500, 1),
    ]
    assert (board.best_sellers[0].name, board.best_sellers[0].category) == ("红富士苹果", "fruit")
    assert (board.best_sellers[3].name, board.best_sellers[3].category) == ("", "")


async def test_without_a_window_every_buyer_is_new_and_the_first_session_is_the_start(
    db: Database,
) -> None:
    board = await Dashboard(db, Catalog(db)).room(S1, Window())
    f = board.figures
    assert (f.sessions, f.viewers, f.buyers, f.orders, f.gmv) == (6, 210, 6, 14, 17900)
    assert (f.new_buyers, f.returning_buyers) == (6, 0)
    assert board.window.start == day(0)


async def test_until_ends_the_window(db: Database) -> None:
    board = await Dashboard(db, Catalog(db)).room(S1, Window(since=day(1), until=day(4)))
    f = board.figures
    # days 1-3: alice (apple, pear), bob (milk), carol (2), frank (milk)
    assert (f.sessions, f.viewers, f.buyers, f.orders, f.units, f.gmv) == (3, 90, 4, 6, 14, 10100)
    assert (f.repeat_buyers, f.repurchase_rate) == (1, 0.25)  # alice: days 1 and 3


async def test_an_empty_window_has_no_ratios(db: Database) -> None:
    board = await Dashboard(db, Catalog(db)).room(S1, Window(since=day(20)))
    assert board.figures == Figures(0, 0, 0, 0, None, 0, 0, 0, 0, 0, 0, None)
    assert board.window.start == day(20) and board.sessions == [] and board.best_sellers == []
    empty = await Dashboard(db, Catalog(db)).room("nobody", Window())
    assert empty.window.start is None and empty.figures.buyers == 0


async def test_customers_are_paged_by_gmv_with_their_tags_and_rules(db: Database) -> None:
    dashboard = Dashboard(db, Catalog(db))
    first = await dashboard.customers(S1, WINDOW, limit=2, offset=0)
    assert first.total == 6
    alice, bob = first.customers
    assert (alice.user_id, alice.orders, alice.units, alice.gmv, alice.sessions) == (
        "alice",
        4,
        7,
        5800,
        4,
    )
    assert alice.returning and not bob.returning
    assert (alice.first_order_at, alice.last_order_at) == (day(1) + HOUR, day(5) + HOUR)
    tags = {t.code: t for t in alice.tags}
    assert list(tags) == ["frequent", "category", "price_sensitive"]
    assert tags["frequent"].label == "高频购买"
    assert tags["frequent"].numbers == {"sessions": 4, "of": 5, "min": 3}
    assert tags["frequent"].rule == "近 5 场直播中有 4 场下单（规则：近 5 场中至少 3 场）"
    assert tags["category"].label == "品类偏好:fruit"
    assert tags["category"].numbers == {"category": "fruit", "units": 6, "of": 7, "share_pct": 85}
    assert (
        tags["category"].rule
        == "7 件中有 6 件（85%）是「fruit」（规则：至少 3 件，其中 ≥ 60% 同一品类）"
    )
    # day 1's apples were under the base price of their time (10.00), day 4's are not (8.00)
    assert tags["price_sensitive"].numbers == {
        "units": 5,
        "of": 7,
        "share_pct": 71,
        "offer": 2,
        "group": 0,
        "below_base": 3,
    }
    assert tags["price_sensitive"].rule_en == (
        "5 of 7 units (71%) were bought at a flash-offer or group price or below HQ's base"
        " price (rule: ≥ 70% of at least 3)"
    )
    assert [(t.code, t.label, t.numbers["units"]) for t in bob.tags] == [
        ("category", "品类偏好:dairy", 3)
    ]

    rest = await dashboard.customers(S1, WINDOW, limit=3, offset=2)
    assert [c.user_id for c in rest.customers] == ["carol", "dave", "frank"]  # 1500 tie: by id
    carol, dave, frank = rest.customers
    assert carol.tags == [] and frank.tags == []
    assert [t.code for t in dave.tags] == ["category", "price_sensitive"]
    assert dave.tags[1].numbers["group"] == 2 and dave.tags[1].numbers["offer"] == 1
    last = await dashboard.customers(S1, WINDOW, limit=20, offset=5)
    assert [(c.user_id, c.tags) for c in last.customers] == [("erin", [])]  # 2 units: no tag
    beyond = await dashboard.customers(S1, WINDOW, limit=20, offset=50)
    assert (beyond.total, beyond.customers) == (6, [])


async def test_frequent_counts_only_the_windows_last_five_sessions(db: Database) -> None:
    # bob bought on days 2 and 5; with days 0-2 only he bought in 1 of 3: no tag. With the
    # whole history (6 sessions), the last five are days 1-5 and alice's day 0 drops out.
    page = await Dashboard(db, Catalog(db)).customers(S1, Window())
    alice = next(c for c in page.customers if c.user_id == "alice")
    assert alice.sessions == 5 and not alice.returning
    assert alice.tags[0].numbers == {"sessions": 4, "of": 5, "min": 3}
    short = await Dashboard(db, Catalog(db)).customers(S1, Window(until=day(3)))
    assert all(t.code != "frequent" for c in short.customers for t in c.tags)


async def test_the_chain_counts_people_once_and_lists_every_store(db: Database) -> None:
    dashboard = Dashboard(db, Catalog(db))
    chain = await dashboard.chain(WINDOW, rooms=[S1, S2, "s3"], names={S1: "一店"})
    f = chain.figures
    assert (f.sessions, f.viewers, f.buyers, f.buyer_sessions) == (7, 350, 7, 13)
    assert (f.orders, f.units, f.gmv) == (16, 35, 31100)
    assert (f.new_buyers, f.returning_buyers) == (6, 1)
    assert (f.repeat_buyers, f.repurchase_rate) == (3, round(3 / 7, 4))  # alice, bob, zoe
    assert f.conversion == round(13 / 350, 4)
    assert [(s.room_id, s.name, s.gmv) for s in chain.stores] == [
        (S1, "一店", 16900),
        (S2, "", 14200),
        ("s3", "", 0),
    ]
    s1_row, s2_row, s3_row = chain.stores
    for field in ("sessions", "viewers", "buyers", "buyer_sessions", "conversion", "orders"):
        assert getattr(s1_row, field) == getattr(S1_FIGURES, field), field
    assert (s1_row.units, s1_row.repeat_buyers, s1_row.repurchase_rate) == (23, 2, 0.3333)
    assert (s2_row.buyers, s2_row.buyer_sessions, s2_row.repeat_buyers) == (2, 3, 1)
    assert (s2_row.conversion, s2_row.repurchase_rate) == (0.02, 0.5)
    assert (s3_row.sessions, s3_row.conversion, s3_row.repurchase_rate) == (0, None, None)
    assert [(b.sku, b.units) for b in chain.best_sellers] == [
        ("milk", 16),
        ("apple", 9),
        ("pear", 5),
        ("local-egg", 5),
    ]
    assert (await dashboard.chain(Window())).window.start == day(0)


# -- the rules alone -------------------------------------------------------------------


def item(sku: str, category: str, base: int, at: int, version: int = 1) -> CatalogItem:
    return CatalogItem(sku, version, sku, sku, category, base, "", "", at)


def line(session: str, sku: str, qty: int, price: int, at: int = 0, **kw: str) -> Line:
    return Line(session, sku, qty, price, kw.get("offer_id"), kw.get("group_id"), at)


def test_thresholds_are_inclusive_and_need_enough_units() -> None:
    assert frequent_tag(2, 5) is None
    tag = frequent_tag(3, 5)
    assert tag is not None and tag.numbers == {"sessions": 3, "of": 5, "min": 3}
    assert frequent_tag(3, 3) is not None  # a window of three sessions, bought in each
    assert category_tag({"fruit": 3}, 5) is not None  # exactly 60 %
    assert category_tag({"fruit": 5}, 9) is None  # 55 %
    assert category_tag({"fruit": 2}, 2) is None  # 100 % of too few units
    assert category_tag({}, 9) is None
    assert price_tag({"offer": 7}, 10) is not None  # exactly 70 %
    assert price_tag({"offer": 4, "below_base": 2}, 9) is None  # 66 %
    assert price_tag({"group": 2}, 2) is None


def test_a_share_shown_in_words_is_rounded_down() -> None:
    # 2 of 3 is 66.7 %: the text says 66 %, never a share the exact one does not reach
    tag = category_tag({"fruit": 2, "dairy": 1}, 3)
    assert tag is not None and tag.numbers["share_pct"] == 66
    assert tag.rule_en.startswith("2 of 3 units (66%) were fruit")


def test_a_deal_is_an_offer_a_group_or_a_price_below_the_base_of_its_time() -> None:
    v1, v2 = item("apple", "fruit", 1000, 100), item("apple", "fruit", 800, 500, version=2)
    assert version_at([v2, v1], 99) == v1  # older than the catalog: its first version
    assert version_at([v2, v1], 499) == v1
    assert version_at([v2, v1], 500) == v2
    assert version_at([], 500) is None
    assert deal_kind(line("a", "apple", 1, 900, 200), v1) == "below_base"
    assert deal_kind(line("a", "apple", 1, 900, 600), v2) is None
    assert deal_kind(line("a", "apple", 1, 1900, 600, offer_id="o"), v2) == "offer"
    assert deal_kind(line("a", "apple", 1, 1900, 600, group_id="g"), v2) == "group"
    assert deal_kind(line("a", "egg", 1, 1, 600), None) is None  # no base price to compare


def test_customer_tags_judge_units_outside_the_catalog_too() -> None:
    catalog = {"apple": [item("apple", "fruit", 1000, 0)]}
    lines = [line("a", "apple", 2, 1000), line("b", "egg", 2, 100)]  # 2 of 4 fruit: 50 %
    assert customer_tags(lines, ["a", "b", "c"], catalog) == []
    lines.append(line("c", "apple", 1, 1000))  # 3 of 5 fruit (60 %), 3 of 3 sessions
    assert [t.code for t in customer_tags(lines, ["a", "b", "c"], catalog)] == [
        "frequent",
        "category",
    ]
    assert [t.code for t in customer_tags(lines, ["b", "c", "d", "e", "f"], catalog)] == [
        "category"
    ]


def test_ratio_is_none_without_a_denominator() -> None:
    assert ratio(1, 3) == 0.3333 and ratio(0, 0) is None and ratio(2, 2) == 1.0
