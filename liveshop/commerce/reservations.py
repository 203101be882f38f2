"""Reservations (预约) of a room's next live: a viewer asks to be told when it starts.

Owns the room's `reservations` set (user ids; a repeat is a no-op). The next live's time
and title are room settings (`next_live_at`, `next_title`, in the room hash, set by
`PUT /api/rooms/{room}`); the snapshot counts the set for `welcome.state.reservations`.
At go-live the session's script puts the reserved users in the `live.started` webhook's
outbox entry (lua `open_session`; how a chain forwards them to WeChat subscription
messages) and the set is emptied, as the room's `next_live_at` / `next_title` are: they
were for that live. A new time for the same upcoming live keeps the reservations.
"""

from __future__ import annotations

from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import AnyRedis


class Reservations:
    def __init__(self, redis: AnyRedis) -> None:
        self._redis = redis

    async def reserve(self, room_id: str, user: str) -> tuple[int, bool]:
        """(count, reserved) after reserving; a repeat changes nothing."""
        key = RoomKeys.of(room_id).reservations
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, user)
            pipe.scard(key)
            _added, count = await pipe.execute()
        return int(count), True

    async def cancel(self, room_id: str, user: str) -> tuple[int, bool]:
        key = RoomKeys.of(room_id).reservations
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.srem(key, user)
            pipe.scard(key)
            _removed, count = await pipe.execute()
        return int(count), False

    async def status(self, room_id: str, user: str) -> tuple[int, bool]:
        key = RoomKeys.of(room_id).reservations
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.scard(key)
            pipe.sismember(key, user)
            count, mine = await pipe.execute()
        return int(count), bool(mine)
