"""HQ's product library (商品库): one catalog of SKUs for the chain, versioned. A store's
product may reference a catalog SKU: it takes the name and image from the catalog, the
store sets its own stock and price (inside HQ's price band).

Owns the SQL table `catalog_versions`: every edit of a SKU is a new row (version n+1),
never an update, so what a store listed last week can still be read back. The current
item is a SKU's highest version.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Annotated

import msgspec

from liveshop.core import protocol as p
from liveshop.engine.database import Database, Migration

MIGRATIONS = [
    Migration(
        "catalog",
        1,
        """
        CREATE TABLE IF NOT EXISTS catalog_versions (
            sku         TEXT NOT NULL,
            version     INTEGER NOT NULL,
            name        TEXT NOT NULL,
            name_en     TEXT NOT NULL DEFAULT '',
            category    TEXT NOT NULL,
            base_price  BIGINT NOT NULL,
            image       TEXT NOT NULL DEFAULT '',
            unit        TEXT NOT NULL DEFAULT '',
            created_at  BIGINT NOT NULL,
            PRIMARY KEY (sku, version)
        )
        """,
    ),
]
COLUMNS = (
    "sku",
    "version",
    "name",
    "name_en",
    "category",
    "base_price",
    "image",
    "unit",
    "created_at",
)

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class CatalogIn(msgspec.Struct, forbid_unknown_fields=True):
    """`PUT /api/catalog/{sku}`."""

    name: Name
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    base_price: p.Price
    name_en: Annotated[str, msgspec.Meta(max_length=100)] = ""
    image: Annotated[str, msgspec.Meta(max_length=500)] = ""
    unit: Annotated[str, msgspec.Meta(max_length=16)] = ""


class CatalogItem(msgspec.Struct, frozen=True):
    sku: str
    version: int
    name: str
    name_en: str
    category: str
    base_price: int
    image: str
    unit: str
    created_at: int


def _item(row: tuple[object, ...]) -> CatalogItem:
    return msgspec.convert(dict(zip(COLUMNS, row, strict=True)), CatalogItem)


_LATEST = (
    f"SELECT {', '.join(COLUMNS)} FROM catalog_versions c WHERE version = "
    "(SELECT MAX(version) FROM catalog_versions WHERE sku = c.sku)"
)


class Catalog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def init_schema(self) -> None:
        await self._db.migrate(MIGRATIONS)

    async def put(self, sku: str, body: CatalogIn) -> CatalogItem:
        """A new version of the SKU (1 for a new one). Two edits at once get versions
        n+1 and n+2: the insert takes the next number or, beaten to it, tries again."""
        for _ in range(20):
            rows = await self._db.fetch_write(
                f"INSERT INTO catalog_versions ({', '.join(COLUMNS)}) "
                "SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8 "
                "FROM catalog_versions WHERE sku = $1 "
                "ON CONFLICT (sku, version) DO NOTHING "
                f"RETURNING {', '.join(COLUMNS)}",
                (
                    sku,
                    body.name,
                    body.name_en,
                    body.category,
                    body.base_price,
                    body.image,
                    body.unit,
                    int(time.time() * 1000),
                ),
            )
            if rows:
                return _item(rows[0])
        raise RuntimeError(f"catalog {sku!r}: no free version after 20 tries")

    async def get(self, sku: str, version: int | None = None) -> CatalogItem | None:
        if version is None:
            rows = await self._db.fetch(_LATEST + " AND sku = $1", (sku,))
        else:
            rows = await self._db.fetch(
                f"SELECT {', '.join(COLUMNS)} FROM catalog_versions "
                "WHERE sku = $1 AND version = $2",
                (sku, version),
            )
        return _item(rows[0]) if rows else None

    async def items(self, category: str | None = None) -> list[CatalogItem]:
        if category is None:
            rows = await self._db.fetch(_LATEST + " ORDER BY category, sku")
        else:
            rows = await self._db.fetch(_LATEST + " AND category = $1 ORDER BY sku", (category,))
        return [_item(r) for r in rows]

    async def versions_of(self, skus: Iterable[str]) -> dict[str, list[CatalogItem]]:
        """Every version of these SKUs, oldest first (SKUs outside the catalog absent)."""
        wanted = sorted(set(skus))
        out: dict[str, list[CatalogItem]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join(f"${i}" for i in range(1, len(chunk) + 1))
            rows = await self._db.fetch(
                f"SELECT {', '.join(COLUMNS)} FROM catalog_versions WHERE sku IN ({marks}) "
                "ORDER BY sku, version",
                chunk,
            )
            for row in rows:
                item = _item(row)
                out.setdefault(item.sku, []).append(item)
        return out

    async def history(self, sku: str) -> list[CatalogItem]:
        rows = await self._db.fetch(
            f"SELECT {', '.join(COLUMNS)} FROM catalog_versions WHERE sku = $1 ORDER BY version",
            (sku,),
        )
        return [_item(r) for r in rows]
