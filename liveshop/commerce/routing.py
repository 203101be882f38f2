"""Joint rooms' order routing (智能分单): which member store fulfils a purchase.

Pure: no I/O. The rule of PROTOCOL.md's joint rooms — the pickup store the buyer chose,
or else the nearest member store (great-circle distance) whose delivery radius covers the
buyer's location and that has every unit in stock — as one function, so the purchase
path and its tests apply the same rule. Stores already tried for this request (they
refused: their stock went meanwhile) are skipped, so a retry moves on and never back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

EARTH_RADIUS_M = 6_371_008.8  # the mean Earth radius (IUGG)


class StoreSpot(msgspec.Struct, frozen=True):
    """A member store: where it is (None: not set, so only a buyer's choice reaches it)
    and how far it delivers (0: pickup only)."""

    room: str
    lat: float | None
    lng: float | None
    radius_m: int


class Route(msgspec.Struct, frozen=True):
    store: str
    distance_m: int  # from the buyer's location (0 when the buyer gave none)
    rule: Literal["chosen", "nearest_in_stock"]


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance by the haversine formula, in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def route(
    stores: Iterable[StoreSpot],
    stock: Mapping[str, int],
    qty: int,
    *,
    chosen: str | None = None,
    at: tuple[float, float] | None = None,
    tried: frozenset[str] = frozenset(),
) -> Route | None:
    """The store for `qty` units: `chosen` if it is a member with the units, else (with a
    location `at`) the nearest member that delivers there and has them; ties go to the
    smaller room id. None: no member store can take it (`no_store`)."""
    members = {s.room: s for s in stores}
    if chosen is not None:
        spot = members.get(chosen)
        if spot is None or chosen in tried or stock.get(chosen, 0) < qty:
            return None
        away = 0
        if at is not None and spot.lat is not None and spot.lng is not None:
            away = round(distance_m(at[0], at[1], spot.lat, spot.lng))
        return Route(chosen, away, "chosen")
    if at is None:
        return None
    best: tuple[float, str] | None = None
    for spot in members.values():
        if spot.room in tried or stock.get(spot.room, 0) < qty:
            continue
        if spot.lat is None or spot.lng is None:
            continue
        far = distance_m(at[0], at[1], spot.lat, spot.lng)
        if far > spot.radius_m:
            continue
        if best is None or (far, spot.room) < best:
            best = (far, spot.room)
    if best is None:
        return None
    return Route(best[1], round(best[0]), "nearest_in_stock")
