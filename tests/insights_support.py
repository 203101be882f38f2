"""Helpers of the dashboard and suggestion tests: a real order database (SQLite, or
PostgreSQL in the PostgreSQL pass) with the tables of rooms.py, orders.py and catalog.py
made by their own migrations, and rows written into those tables as the app writes them."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from liveshop.commerce import catalog, orders, rooms
from liveshop.commerce.catalog import Catalog
from liveshop.commerce.orders import OrderStore
from liveshop.engine.database import Database, open_database
from tests.databases import database_for_test

DAY = 86_400_000
HOUR = 3_600_000
T0 = 1_750_000_000_000  # a fixed epoch ms: every figure below is exact
_ids = itertools.count(1)


@asynccontextmanager
async def history_db(tmp_path: Path) -> AsyncIterator[Database]:
    async with database_for_test(tmp_path, "history.db") as url:
        db = await open_database(url)
        try:
            await db.migrate([*rooms.MIGRATIONS, *orders.MIGRATIONS, *catalog.MIGRATIONS])
            yield db
        finally:
            await db.close()


async def add_session(
    db: Database,
    room_id: str,
    session_id: str,
    started_at: int,
    *,
    viewers: int,
    ended: bool = True,
    title: str = "",
) -> None:
    """A row of `sessions` as go_live + end_live leave it (totals from the engine)."""
    row = {
        "session_id": session_id,
        "room_id": room_id,
        "title": title or session_id,
        "started_at": started_at,
        "ended_at": started_at + 2 * HOUR if ended else None,
        "peak": viewers,
        "orders": 0,
        "units": 0,
        "gmv": 0,
        "buyers": 0,
        "viewers": viewers,
        "group_joins": 0,
        "groups_succeeded": 0,
        "groups_failed": 0,
    }
    cols = rooms.SESSION_COLUMNS
    marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    await db.execute(
        f"INSERT INTO sessions ({', '.join(cols)}) VALUES ({marks})", [row[c] for c in cols]
    )


async def add_order(
    db: Database,
    room_id: str,
    session_id: str,
    user: str,
    sku: str,
    qty: int,
    price: int,
    at: int,
    *,
    state: str = "picked_up",
    offer_id: str | None = None,
    group_id: str | None = None,
) -> None:
    """A row of `orders` as the persister stores it."""
    n = next(_ids)
    row: dict[str, object] = dict.fromkeys(orders.COLUMNS)
    row.update(
        order_id=f"{room_id}-{n}",
        room_id=room_id,
        session_id=session_id,
        user_id=user,
        sku=sku,
        qty=qty,
        unit_price=price,
        offer_id=offer_id,
        pickup_code=f"{n:06d}",
        status="accepted",
        created_at=at,
        state=state,
        version=1,
        updated_at=at,
        method="pickup",
        group_id=group_id,
    )
    await OrderStore(db).insert([tuple(row[c] for c in orders.COLUMNS)])


async def add_catalog(
    db: Database, sku: str, category: str, base_price: int, at: int, *, name: str = ""
) -> None:
    """A version of an HQ SKU created at `at` (Catalog.put stamps the clock's now; the
    history needs versions of the past)."""
    versions = await Catalog(db).history(sku)
    row = {
        "sku": sku,
        "version": len(versions) + 1,
        "name": name or sku,
        "name_en": sku,
        "category": category,
        "base_price": base_price,
        "image": "",
        "unit": "",
        "created_at": at,
    }
    cols = catalog.COLUMNS
    marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    await db.execute(
        f"INSERT INTO catalog_versions ({', '.join(cols)}) VALUES ({marks})",
        [row[c] for c in cols],
    )
