"""Shared fixtures: one real Redis-compatible engine per test session (the embedded
valkey by default, the machine's Redis with LIVESHOP_TEST_REDIS_URL), flushed before
each test, and real liveshop servers on port 0."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.rooms import Rooms
from liveshop.core.config import Settings
from liveshop.engine.connections import connect_redis
from liveshop.engine.database import open_database, sqlite_url
from liveshop.engine.embedded import EmbeddedEngine
from liveshop.engine.scripts import Scripts
from tests.cluster import LocalCluster
from tests.databases import database_for_test
from tests.support import RunningServer, settings_for

ROOM = "s001"
PRODUCTS = [
    ("lychee-500g", "岭南荔枝 500g", 1990, 200),
    ("mango-2pc", "海南贵妃芒 2个装", 1590, 120),
]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("LIVESHOP_TEST_REDIS_URL")
    if external:
        yield external
        return
    engine = EmbeddedEngine(tmp_path_factory.mktemp("engine"))
    engine.start()
    try:
        yield engine.url
    finally:
        engine.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect_redis(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def scripts(redis: Redis) -> Scripts:
    s = Scripts(redis)
    await s.load_all()
    return s


@pytest.fixture
async def domain(
    redis: Redis, scripts: Scripts, tmp_path: Path
) -> AsyncIterator[tuple[Rooms, Inventory]]:
    """Rooms and Inventory on the real engine and a real SQLite file, with room s001 live."""
    db = await open_database(sqlite_url(tmp_path / "domain.db"))  # rooms' sessions only
    rooms = Rooms(redis, scripts, db)
    await rooms.init_schema()
    inventory = Inventory(redis, scripts, idempotency_ttl_s=3600)
    await seed_room(rooms, inventory)
    try:
        yield rooms, inventory
    finally:
        await inventory.aclose()
        await db.close()


async def seed_room(
    rooms: Rooms,
    inventory: Inventory,
    room: str = ROOM,
    stock: dict[str, int] | None = None,
    live: bool = True,
) -> None:
    await rooms.put(room, name="鲜果社区店", title="今晚荔枝专场")
    for sku, name, price, default_stock in PRODUCTS:
        await inventory.put_product(
            room, sku, name=name, price=price, stock=(stock or {}).get(sku, default_stock)
        )
    if live:
        await rooms.go_live(room, None)


@contextlib.asynccontextmanager
async def seeded_server(settings: Settings, **kwargs: Any) -> AsyncIterator[RunningServer]:
    """A real liveshop server on 127.0.0.1:<random>, room s001 live with two products."""
    srv = await RunningServer(settings, **kwargs).start()
    services = srv.runtime.services
    assert services is not None
    await seed_room(services.rooms, services.inventory)
    try:
        yield srv
    finally:
        await srv.stop()


@contextlib.asynccontextmanager
async def server_off_air(
    redis_url: str, tmp_path: Path, rooms: tuple[str, ...] = (ROOM, "s002")
) -> AsyncIterator[RunningServer]:
    """A real server on the pass's test database (PostgreSQL in the PG pass) with these
    rooms seeded and not live (a test goes live itself, e.g. with a pack)."""
    async with database_for_test(tmp_path) as database_url:
        srv = await RunningServer(
            settings_for(redis_url, tmp_path, database_url=database_url)
        ).start()
        try:
            services = srv.runtime.services
            assert services is not None
            for room in rooms:
                await seed_room(services.rooms, services.inventory, room, live=False)
            yield srv
        finally:
            await srv.stop()


@pytest.fixture
async def server(redis: Redis, redis_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A real liveshop server on 127.0.0.1:<random>, room s001 live with two products;
    orders in SQLite, or in a fresh PostgreSQL database in the PostgreSQL pass."""
    async with (
        database_for_test(tmp_path) as database_url,
        seeded_server(settings_for(redis_url, tmp_path, database_url=database_url)) as srv,
    ):
        yield srv


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A three-master Redis Cluster on loopback, from the embedded engine's binary."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cluster_server(
    redis_cluster: LocalCluster, tmp_path: Path
) -> AsyncIterator[RunningServer]:
    """A liveshop server on the Cluster, room s001 live with two products."""
    redis_cluster.flush()
    async with seeded_server(settings_for("", tmp_path, redis_cluster=redis_cluster.nodes)) as srv:
        yield srv


@pytest.fixture
async def two_servers(
    redis: Redis, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Two servers on one engine (two processes' hubs), room s001 live; the engine is
    emptied before and after (moderation state such as a slow mode must not reach the
    next test)."""
    async with seeded_server(settings_for(redis_url, tmp_path / "a")) as a:
        b = await RunningServer(settings_for(redis_url, tmp_path / "b")).start()
        try:
            yield a, b
        finally:
            await b.stop()
    await redis.flushdb()
