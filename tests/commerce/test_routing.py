"""Joint rooms' routing rule (pure): the chosen pickup store, or the nearest member store
that delivers to the buyer and has every unit; stores tried already are skipped. Known
answers on real coordinates, and 100 stores at random places checked against an
independent distance (the spherical law of cosines) for 2,000 random buyers."""

from __future__ import annotations

import math
import random

from liveshop.commerce.routing import Route, StoreSpot, distance_m, route

# Three Beijing stores: 望京 (Wangjing), 国贸 (Guomao), 中关村 (Zhongguancun)
WANGJING = StoreSpot("s-wangjing", 39.9964, 116.4703, 8_000)
GUOMAO = StoreSpot("s-guomao", 39.9087, 116.4605, 8_000)
ZGC = StoreSpot("s-zgc", 39.9835, 116.3162, 3_000)
STORES = [WANGJING, GUOMAO, ZGC]
SANLITUN = (39.9339, 116.4547)  # 2.8 km from 国贸, 7.1 km from 望京


def _cosines_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(
        math.radians(lng2 - lng1)
    )
    return 6_371_008.8 * math.acos(max(-1.0, min(1.0, c)))


def test_known_distances() -> None:
    assert round(distance_m(*SANLITUN, GUOMAO.lat, GUOMAO.lng)) in range(2_750, 2_850)
    assert round(distance_m(*SANLITUN, WANGJING.lat, WANGJING.lng)) in range(7_000, 7_150)
    assert distance_m(39.9, 116.4, 39.9, 116.4) == 0


def test_the_nearest_store_with_every_unit_that_delivers_there() -> None:
    stock = {"s-wangjing": 10, "s-guomao": 10, "s-zgc": 10}
    nearest = route(STORES, stock, 2, at=SANLITUN)
    assert nearest is not None and (nearest.store, nearest.rule) == ("s-guomao", "nearest_in_stock")
    assert nearest.distance_m in range(2_750, 2_850)
    # 国贸 has only one left: the next nearest with both units
    assert route(STORES, {**stock, "s-guomao": 1}, 2, at=SANLITUN) == Route(
        "s-wangjing", round(distance_m(*SANLITUN, WANGJING.lat, WANGJING.lng)), "nearest_in_stock"
    )
    # tried already (it refused): never back to it
    again = route(STORES, stock, 2, at=SANLITUN, tried=frozenset({"s-guomao"}))
    assert again is not None and again.store == "s-wangjing"
    # 中关村 is far and delivers only 3 km: nobody else has stock -> no store
    assert route(STORES, {"s-zgc": 10}, 1, at=SANLITUN) is None
    assert route(STORES, stock, 1) is None  # no location and no store chosen


def test_the_chosen_pickup_store() -> None:
    stock = {"s-wangjing": 3, "s-zgc": 0}
    assert route(STORES, stock, 3, chosen="s-wangjing") == Route("s-wangjing", 0, "chosen")
    chosen = route(STORES, stock, 1, chosen="s-wangjing", at=SANLITUN)
    assert chosen is not None and chosen.distance_m > 7_000  # the distance, for the record
    assert route(STORES, stock, 4, chosen="s-wangjing") is None  # not every unit
    assert route(STORES, stock, 1, chosen="s-zgc") is None
    assert route(STORES, stock, 1, chosen="s-elsewhere") is None  # not a member
    # a member without a place: reached only by choice, at no distance
    placeless = [*STORES, StoreSpot("s-new", None, None, 5_000)]
    assert route(placeless, {"s-new": 5}, 1, chosen="s-new", at=SANLITUN) == Route(
        "s-new", 0, "chosen"
    )
    assert route(placeless, {"s-new": 5}, 1, at=SANLITUN) is None


def test_100_random_stores_the_route_is_the_nearest_eligible() -> None:
    rng = random.Random(2026)
    stores = [
        StoreSpot(
            f"s{i:03d}",
            39.7 + rng.random() * 0.5,
            116.1 + rng.random() * 0.6,
            rng.choice([0, 2_000, 5_000, 10_000]),
        )
        for i in range(100)
    ]
    routed = nobody = 0
    for _ in range(2_000):
        stock = {s.room: rng.choice([0, 0, 1, 3, 10]) for s in stores}
        qty = rng.choice([1, 2, 3])
        at = (39.7 + rng.random() * 0.5, 116.1 + rng.random() * 0.6)
        found = route(stores, stock, qty, at=at)
        eligible = sorted(
            (_cosines_m(*at, s.lat, s.lng), s.room)
            for s in stores
            if stock[s.room] >= qty and _cosines_m(*at, s.lat, s.lng) <= s.radius_m
        )
        if not eligible:
            assert found is None
            nobody += 1
            continue
        assert found is not None and found.rule == "nearest_in_stock"
        assert found.store == eligible[0][1]
        assert abs(found.distance_m - eligible[0][0]) < 1
        routed += 1
    assert routed > 500 and nobody > 50  # both outcomes were exercised
