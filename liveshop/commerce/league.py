"""HQ's league (门店排行): every room of the chain with its live session's figures.

Owns no keys: one read-only script per room (lua/league_row.lua) reads the room's own
keys, so on a Cluster every room is read on its own shard, in one pipelined round per
shard. The rules are pure: a row from the script's reply, and the diff between what a
socket was last sent and what is true now (only changed fields travel).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from liveshop.core import protocol as p
from liveshop.core.keys import RoomKeys
from liveshop.core.replies import as_text
from liveshop.engine.connections import AnyRedis
from liveshop.engine.scripts import Call, Scripts, run_many

CHUNK = 500  # rooms per pipelined round


def row_of(room_id: str, reply: list[object]) -> p.LeagueRow:
    """The script's reply as a row (pure)."""
    name, region, live, viewers, peak, orders, units, gmv, buyers, audience, holds = reply[:11]
    groups_open, hints, pack = reply[11:14]
    audience_n = _int(audience)
    return p.LeagueRow(
        room=room_id,
        name=_text(name),
        region=_text(region),
        live=_int(live) == 1,
        viewers=_int(viewers),
        peak=_int(peak),
        orders=_int(orders),
        units=_int(units),
        gmv=_int(gmv),
        conversion=round(_int(buyers) / audience_n, 4) if audience_n else 0.0,
        holds=_int(holds),
        groups_open=_int(groups_open),
        hints=_int(hints),
        pack=_text(pack) or None,
    )


def changes(
    before: Mapping[str, p.LeagueRow], now: Mapping[str, p.LeagueRow]
) -> list[dict[str, object]]:
    """The rows of `now` that differ from `before`: each with `room` and the fields whose
    value changed (a new room: every field). Rooms gone from `now` are not reported."""
    out: list[dict[str, object]] = []
    for room_id, row in now.items():
        old = before.get(room_id)
        fields = msgspec.to_builtins(row)
        if old is None:
            out.append(fields)
            continue
        if old == row:
            continue
        previous = msgspec.to_builtins(old)
        diff: dict[str, object] = {"room": room_id}
        for key in msgspec.structs.fields(p.LeagueRow):
            value = fields.get(key.name)
            if value != previous.get(key.name):
                diff[key.name] = value
        out.append(diff)
    return out


class League:
    def __init__(self, redis: AnyRedis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    async def rows(self, room_ids: list[str]) -> dict[str, p.LeagueRow]:
        out: dict[str, p.LeagueRow] = {}
        for start in range(0, len(room_ids), CHUNK):
            chunk = room_ids[start : start + CHUNK]
            calls: list[Call] = []
            for room_id in chunk:
                k = RoomKeys.of(room_id)
                calls.append(
                    (
                        self._scripts.league_row,
                        [
                            k.room,
                            k.stats,
                            k.buyers,
                            k.audience,
                            k.held,
                            k.groups,
                            k.presence,
                            k.presence_exp,
                        ],
                        [k.group("")],
                    )
                )
            for room_id, reply in zip(chunk, await run_many(self._redis, calls), strict=True):
                out[room_id] = row_of(room_id, list(reply))
        return out


def _int(value: object) -> int:
    if isinstance(value, int):
        return value
    return int(_text(value) or 0)


def _text(value: object) -> str:
    return as_text(value) if isinstance(value, bytes | str) else ""
