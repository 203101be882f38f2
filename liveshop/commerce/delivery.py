"""Delivery: whether an address is inside the store's radius, and what a delivery
provider's status callbacks mean for an order.

Pure rules (no I/O) plus the room's delivery area read from the room hash (`lat`,
`lng`, `delivery_radius_m`, written by `PUT /api/rooms/{room}`). The moves themselves are
order_book's (`orders_delivery.lua`): a callback is applied only if its status ranks
above the last one applied, so late, repeated and reordered callbacks change nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from liveshop.commerce.order_states import State
from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import AnyRedis

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
DEFAULT_RADIUS_M = 3000


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class DeliveryArea:
    lat: float | None
    lng: float | None
    radius_m: int

    def covers(self, lat: float, lng: float) -> bool:
        """Inside the radius. A store without a location, or with radius 0, delivers
        nowhere."""
        if self.lat is None or self.lng is None or self.radius_m <= 0:
            return False
        return haversine_m(self.lat, self.lng, lat, lng) <= self.radius_m


async def area_of(redis: AnyRedis, room_id: str) -> DeliveryArea:
    lat, lng, radius = await redis.hmget(
        RoomKeys.of(room_id).room, ["lat", "lng", "delivery_radius_m"]
    )
    return DeliveryArea(
        lat=float(lat) if lat else None,
        lng=float(lng) if lng else None,
        radius_m=int(radius) if radius else DEFAULT_RADIUS_M,
    )


# A provider's statuses, in the order a delivery goes through them (rank), and the
# move each makes (None: recorded on the order, no move).
CALLBACK_STATUSES: dict[str, tuple[int, State | None]] = {
    "assigned": (1, None),  # a courier took the job
    "picked": (2, None),  # the courier has the goods
    "delivered": (3, State.DELIVERED),
    "failed": (3, State.DELIVERY_FAILED),
}
