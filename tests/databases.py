"""Test databases: a SQLite file, or a fresh PostgreSQL database per test on the
machine's server. PostgreSQL is used where a test asks for it (the `postgres_url`
fixture) and, for every server a test starts, when LIVESHOP_TEST_DATABASE_URL names an
admin connection (CI sets it when PostgreSQL answers). Absent, those tests skip loudly."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from liveshop.engine.database import open_database, sqlite_url

DEFAULT_ADMIN = "postgresql://127.0.0.1:5432/test"


def admin_url() -> str:
    return os.environ.get("LIVESHOP_TEST_DATABASE_URL") or DEFAULT_ADMIN


def postgres_for_servers() -> bool:
    """Servers in tests store orders in PostgreSQL (a second CI pass over the order path)."""
    return bool(os.environ.get("LIVESHOP_TEST_DATABASE_URL"))


@asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """A new, empty database on the admin connection's server; dropped afterwards."""
    admin = admin_url()
    try:
        conn = await asyncpg.connect(admin, timeout=2)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("LIVESHOP_TEST_DATABASE_URL"):
            pytest.fail(f"LIVESHOP_TEST_DATABASE_URL={admin} does not answer: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {admin} ({exc}); set LIVESHOP_TEST_DATABASE_URL")
    name = f"liveshop_t_{secrets.token_hex(6)}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(admin)
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@asynccontextmanager
async def database_for_test(tmp_path: Path, name: str = "liveshop.db") -> AsyncIterator[str]:
    """The URL servers and stores in a test use: SQLite, or PostgreSQL in the PG pass."""
    if postgres_for_servers():
        async with fresh_postgres() as url:
            yield url
    else:
        yield sqlite_url(tmp_path / name)


async def order_rows(url: str, room_id: str) -> list[tuple[str, int]]:
    """(order_id, qty) of the room's stored orders, read on a connection of its own."""
    db = await open_database(url)
    try:
        rows = await db.fetch("SELECT order_id, qty FROM orders WHERE room_id = $1", [room_id])
        return [(str(order_id), int(str(qty))) for order_id, qty in rows]
    finally:
        await db.close()
