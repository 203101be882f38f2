"""HQ through a real server: the catalog over REST (versions, a store's product taking
the catalog's name), price bands refusing a price on every path a store has (REST 422
and the socket's `error`, both with the band), and the console's read of its bands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import ROOM, seeded_server
from tests.support import UNIT, Client, RunningServer, settings_for, token

HQ = {"Authorization": f"Bearer {token('hq', user='hq-1')}"}
HOST = {"Authorization": f"Bearer {token('broadcaster', user='host', room=ROOM)}"}
VIEWER = {"Authorization": f"Bearer {token('viewer', user='v1', room=ROOM)}"}
SKU = "lychee-500g"


@pytest.fixture
async def srv(redis: Redis, redis_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with seeded_server(settings_for(redis_url, tmp_path)) as server:
        yield server


async def test_the_catalog_keeps_every_version_and_names_a_stores_product(
    srv: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
        item = {"name": "赣南脐橙 5斤", "category": "fruit", "base_price": 3990, "unit": "箱"}
        first = await http.put("/api/catalog/navel-5jin", json=item, headers=HQ)
        assert first.status_code == 200 and first.json()["item"]["version"] == 1
        second = await http.put(
            "/api/catalog/navel-5jin", json={**item, "base_price": 3590}, headers=HQ
        )
        assert second.json()["item"]["version"] == 2
        listed = (await http.get("/api/catalog", headers=VIEWER)).json()["items"]
        assert [(i["sku"], i["version"], i["base_price"]) for i in listed] == [
            ("navel-5jin", 2, 3590)
        ]
        one = (await http.get("/api/catalog/navel-5jin", headers=HQ)).json()
        assert [v["base_price"] for v in one["versions"]] == [3990, 3590]
        # only HQ edits it; bad input is a JSON error and changes nothing
        denied = await http.put("/api/catalog/navel-5jin", json=item, headers=HOST)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
        bad = await http.put("/api/catalog/navel-5jin", json={"name": "x"}, headers=HQ)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_message"
        assert len((await http.get("/api/catalog/navel-5jin", headers=HQ)).json()["versions"]) == 2
        # a store lists the catalog SKU with its own price and stock, no name of its own
        put = await http.put(
            f"/api/rooms/{ROOM}/products/navel-5jin",
            json={"price": 3490, "stock": 40},
            headers=HOST,
        )
        assert put.status_code == 200, put.text
        room = (await http.get(f"/api/rooms/{ROOM}")).json()
        product = next(x for x in room["products"] if x["sku"] == "navel-5jin")
        assert (product["name"], product["price"], product["stock"]) == ("赣南脐橙 5斤", 3490, 40)
        unknown = await http.put(
            f"/api/rooms/{ROOM}/products/not-in-catalog",
            json={"price": 10, "stock": 1},
            headers=HOST,
        )
        assert unknown.status_code == 400 and "catalog" in unknown.json()["error"]["message"]


async def test_a_band_refuses_a_price_on_rest_and_on_the_socket(srv: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=srv.http, timeout=10 * UNIT) as http:
        r = await http.put(
            f"/api/bands/{SKU}", json={"scope": "chain", "floor": 1500, "ceiling": 2500}, headers=HQ
        )
        assert r.status_code == 200, r.text
        r = await http.put(
            f"/api/bands/{SKU}",
            json={"scope": f"store:{ROOM}", "floor": 1800, "ceiling": 2200},
            headers=HQ,
        )
        assert r.status_code == 200
        mine = (await http.get(f"/api/rooms/{ROOM}/bands", headers=HOST)).json()
        assert mine["bands"] == {SKU: {"floor": 1800, "ceiling": 2200}}
        assert (await http.get(f"/api/rooms/{ROOM}/bands", headers=VIEWER)).status_code == 403
        # the product's price: 422 with the band, nothing changed
        refused = await http.put(
            f"/api/rooms/{ROOM}/products/{SKU}",
            json={"name": "荔枝", "price": 1700, "stock": 5},
            headers=HOST,
        )
        assert refused.status_code == 422
        assert refused.json()["error"] == {
            "code": "price_out_of_band",
            "message": refused.json()["error"]["message"],
            "floor": 1800,
            "ceiling": 2200,
        }
        room = (await http.get(f"/api/rooms/{ROOM}")).json()
        product = next(x for x in room["products"] if x["sku"] == SKU)
        assert (product["price"], product["stock"]) == (1990, 200)
        # bad band input: 400, and a band for a room that does not exist: 404
        bad = await http.put(
            f"/api/bands/{SKU}", json={"scope": "galaxy", "floor": 1, "ceiling": 2}, headers=HQ
        )
        assert bad.status_code == 400
        upside = await http.put(
            f"/api/bands/{SKU}", json={"scope": "chain", "floor": 9, "ceiling": 2}, headers=HQ
        )
        assert upside.status_code == 400 and upside.json()["error"]["code"] == "bad_message"
        nowhere = await http.put(
            f"/api/bands/{SKU}", json={"scope": "store:nope", "floor": 1, "ceiling": 2}, headers=HQ
        )
        assert nowhere.status_code == 404
    host = await Client.connect(srv.ws_url(ROOM))
    try:
        welcome = await host.hello(token("broadcaster", user="host", room=ROOM))
        assert welcome["type"] == "welcome"
        offer = {"sku": SKU, "qty": 5, "duration_s": 60, "per_user_limit": 1}
        err = await host.request({"type": "offer_start", **offer, "price": 2300}, "offer")
        assert (err["type"], err["code"], err["floor"], err["ceiling"]) == (
            "error",
            "price_out_of_band",
            1800,
            2200,
        )
        group = {"sku": SKU, "threshold": 2, "duration_s": 600, "cap": 5, "per_user_limit": 1}
        err = await host.request({"type": "group_start", **group, "price": 100}, "group")
        assert (err["type"], err["code"]) == ("error", "price_out_of_band")
        ok = await host.request({"type": "offer_start", **offer, "price": 1900}, "offer")
        assert (ok["type"], ok["price"]) == ("offer", 1900)
    finally:
        await host.close()
