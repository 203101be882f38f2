"""Our own script calls and purchase link on the real engine: NOSCRIPT reloads, URL
forms, and the link logging in to the right database (the machine's Redis, db 15)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from liveshop.core.keys import RoomKeys
from liveshop.engine.connections import connect_redis, engine_url
from liveshop.engine.link import Address, EngineLink
from liveshop.engine.scripts import Scripts, run_many
from tests.conftest import ROOM


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("unix:///run/e.sock", Address(path="/run/e.sock")),
        ("unix:///run/e.sock?db=3&password=p", Address(path="/run/e.sock", password="p", db=3)),
        ("redis://127.0.0.1:6380/15", Address(host="127.0.0.1", port=6380, db=15)),
        ("redis://u:p%40ss@h/2", Address(host="h", username="u", password="p@ss", db=2)),
        ("redis://:pw@h?db=4", Address(host="h", password="pw", db=4)),
        ("rediss://h:6380", None),
    ],
)
def test_urls_are_read_as_redis_py_documents_them(url: str, address: Address | None) -> None:
    assert Address.parse(url) == address


async def test_scripts_reload_after_the_engine_forgot_them(redis: Redis, scripts: Scripts) -> None:
    keys = RoomKeys.of(ROOM)
    await redis.script_flush()
    one = await scripts.rooms_emit(
        keys=[keys.seq, keys.history], args=["-", '{"type":"x"', keys.channel]
    )
    await redis.script_flush()
    calls = [(scripts.rooms_emit, [keys.seq, keys.history], ["-", '{"type":"x"', keys.channel])]
    assert await run_many(redis, calls * 2) == [one + 1, one + 2]  # each ran exactly once


async def test_the_link_selects_the_database_of_its_url(redis_url: str) -> None:
    # Another database of the test engine than the one the suite uses: SELECT must run.
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        url = urlunsplit(parts._replace(query="db=14"))
    else:
        url = urlunsplit(parts._replace(path="/14", query=""))
    client = connect_redis(url)
    assert engine_url(client) == url
    link = EngineLink.for_url(url)
    assert link is not None
    try:
        await client.delete("ls:test:link")
        conn = await link.connect()
        loop = asyncio.get_running_loop()
        futures = [loop.create_future(), loop.create_future()]
        conn.send([("SET", "ls:test:link", "here"), ("GET", "ls:test:link")], futures)
        assert await asyncio.gather(*futures) == [b"OK", b"here"]
        assert await client.get("ls:test:link") == b"here"  # the same database
    finally:
        await client.delete("ls:test:link")
        await link.aclose()
        await client.aclose()


async def test_an_unreachable_engine_is_a_connection_error() -> None:
    link = EngineLink.for_url("unix:///nonexistent/engine.sock")
    assert link is not None
    with pytest.raises(RedisConnectionError):
        await link.connect()
