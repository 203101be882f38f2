"""The schedule and reservations (预约) over real HTTP and sockets: the console sets the
next live, a viewer's welcome shows it with the reservation count while the room is not
live; a reservation is once per user (a repeat is a no-op), can be taken back; bad input
is a JSON error that changes nothing; going live clears the announcement and hands the
reservations on."""

from __future__ import annotations

from pathlib import Path

import httpx
from redis.asyncio import Redis

from tests.conftest import ROOM, server_off_air
from tests.support import UNIT, Client, token


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def test_the_next_live_and_its_reservations(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    async with (
        server_off_air(redis_url, tmp_path) as srv,
        httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http,
    ):
        host = bearer(token("broadcaster", "host1", ROOM))
        url = f"/api/rooms/{ROOM}"
        put = await http.put(
            f"{url}/schedule",
            json={"next_live_at": 1_893_456_000_000, "next_title": "周五荔枝专场"},
            headers=host,
        )
        assert put.status_code == 200
        other_host = bearer(token("broadcaster", "host2", "s002"))
        denied = await http.put(f"{url}/schedule", json={"next_live_at": 0}, headers=other_host)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
        bad = await http.put(f"{url}/schedule", json={"next_live_at": -1}, headers=host)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_message"

        u1, u2 = bearer(token(user="u1")), bearer(token(user="u2"))
        first = await http.post(f"{url}/reservations", headers=u1)
        assert first.json() == {"count": 1, "reserved": True}
        again = await http.post(f"{url}/reservations", headers=u1)
        assert again.json() == {"count": 1, "reserved": True}  # once per user
        assert (await http.post(f"{url}/reservations", headers=u2)).json()["count"] == 2
        mine = await http.get(f"{url}/reservations", headers=u1)
        assert mine.json() == {"count": 2, "reserved": True}
        back = await http.delete(f"{url}/reservations", headers=u2)
        assert back.json() == {"count": 1, "reserved": False}
        assert (await http.post(f"{url}/reservations")).status_code == 401
        assert (await http.post(f"{url}/reservations", headers=host)).status_code == 403
        assert (await http.post("/api/rooms/nope/reservations", headers=u1)).status_code == 404

        viewer = await Client.connect(srv.ws_url(ROOM))
        welcome = await viewer.hello(token(user="u3"))
        state = welcome["state"]
        assert state["live"] is False
        assert state["next_live_at"] == 1_893_456_000_000
        assert state["next_title"] == "周五荔枝专场"
        assert state["reservations"] == 1
        await viewer.close()

        # moving the time keeps the reservations; going live hands them on and clears
        # the announcement, so after this live nobody sees a stale countdown
        moved = {"next_live_at": 1_893_459_600_000, "next_title": "周五荔枝专场"}
        assert (await http.put(f"{url}/schedule", json=moved, headers=host)).status_code == 200
        assert (await http.get(f"{url}/reservations", headers=u1)).json()["count"] == 1
        console = await Client.connect(srv.ws_url(ROOM))
        await console.hello(token("broadcaster", "host1", ROOM))
        await console.request({"type": "go_live"}, "live")
        await console.request({"type": "end_live"}, "live")
        await console.close()
        assert (await http.get(f"{url}/reservations", headers=u1)).json() == {
            "count": 0,
            "reserved": False,
        }
        after = await Client.connect(srv.ws_url(ROOM))
        state = (await after.hello(token(user="u3")))["state"]
        await after.close()
        assert state["live"] is False and state["reservations"] == 0
        assert state.get("next_live_at") is None and state.get("next_title") is None
