"""The SQL database: one small interface, two implementations (SQLite, PostgreSQL).

Owns connections, the dialect differences and the migration table; never a domain
table: each commerce module declares its own tables as `Migration`s and its own
queries. SQL is written once, with `$1` placeholders and `ON CONFLICT`, which both
engines speak (SQLite gets `?1`). A write is committed (SQLite WAL with
`synchronous=FULL`; PostgreSQL's default `synchronous_commit`) before the call returns.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

import aiosqlite
import asyncpg

Row = tuple[object, ...]
Dialect = Literal["sqlite", "postgresql"]

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    module      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    applied_at  BIGINT NOT NULL,
    PRIMARY KEY (module, version)
)
"""
_PLACEHOLDER = re.compile(r"\$(\d+)")


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of one module's schema. Steps of a module apply in version order, once;
    `sql` may hold several statements separated by `;` (no `;` inside literals)."""

    module: str
    version: int
    sql: str

    def statements(self) -> list[str]:
        return [s.strip() for s in self.sql.split(";") if s.strip()]


class Database(Protocol):
    dialect: Dialect

    async def migrate(self, migrations: Iterable[Migration]) -> list[tuple[str, int]]:
        """Apply the steps not applied yet; returns the (module, version) applied now.
        Safe when several processes start at once."""
        ...

    async def execute(self, sql: str, args: Sequence[object] = ()) -> None: ...

    async def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """One statement for many rows, in one transaction."""
        ...

    async def fetch(self, sql: str, args: Sequence[object] = ()) -> list[Row]: ...

    async def fetch_write(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        """A writing statement with RETURNING, committed (e.g. a claim: the rows it took)."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


async def open_database(url: str) -> Database:
    """`sqlite:///relative/or/absolute/path.db` or `postgresql://user@host:port/db`."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return await SqliteDatabase.open(Path(url[len("sqlite:///") :]))
    if scheme in ("postgresql", "postgres"):
        return await PostgresDatabase.open(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///… or postgresql://…")


class SqliteDatabase:
    """One aiosqlite connection (its own thread); writes are serialised by a lock so a
    transaction is never interleaved with another task's statements."""

    dialect: Dialect = "sqlite"

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA busy_timeout=5000")
        return cls(db)

    @staticmethod
    def _sql(sql: str) -> str:
        return _PLACEHOLDER.sub(r"?\1", sql)

    async def migrate(self, migrations: Iterable[Migration]) -> list[tuple[str, int]]:
        async with self._lock:
            # BEGIN IMMEDIATE takes the write lock: a second process waits, then sees
            # what the first applied.
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                await self._db.execute(_MIGRATIONS_TABLE)
                async with self._db.execute("SELECT module, version FROM schema_migrations") as c:
                    done = {(str(m), int(v)) for m, v in await c.fetchall()}
                applied = []
                for step in sorted(migrations, key=lambda m: (m.module, m.version)):
                    if (step.module, step.version) in done:
                        continue
                    for statement in step.statements():
                        await self._db.execute(statement)
                    await self._db.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        (step.module, step.version, int(time.time() * 1000)),
                    )
                    applied.append((step.module, step.version))
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
            return applied

    async def execute(self, sql: str, args: Sequence[object] = ()) -> None:
        async with self._lock:
            try:
                await self._db.execute(self._sql(sql), tuple(args))
                await self._db.commit()
            except BaseException:
                # A failed statement may leave sqlite3's implicit transaction open, and
                # with it the write lock every other process is waiting for.
                await self._db.rollback()
                raise

    async def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        async with self._lock:
            try:
                await self._db.executemany(self._sql(sql), [tuple(r) for r in rows])
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise

    async def fetch(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        async with self._db.execute(self._sql(sql), tuple(args)) as cur:
            return [tuple(row) for row in await cur.fetchall()]

    async def fetch_write(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        async with self._lock:
            try:
                async with self._db.execute(self._sql(sql), tuple(args)) as cur:
                    rows = [tuple(row) for row in await cur.fetchall()]
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
            return rows

    async def ping(self) -> None:
        await self.fetch("SELECT 1")

    async def close(self) -> None:
        await self._db.close()


class PostgresDatabase:
    """An asyncpg pool. Every statement runs on a pooled connection; `execute_many` is one
    transaction."""

    dialect: Dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 8) -> PostgresDatabase:
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, command_timeout=30
        )
        return cls(pool)

    async def migrate(self, migrations: Iterable[Migration]) -> list[tuple[str, int]]:
        async with self._pool.acquire() as conn, conn.transaction():
            # One migrator at a time across every process of the chain.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('liveshop.migrations'))")
            await conn.execute(_MIGRATIONS_TABLE)
            done = {
                (str(r["module"]), int(r["version"]))
                for r in await conn.fetch("SELECT module, version FROM schema_migrations")
            }
            applied = []
            for step in sorted(migrations, key=lambda m: (m.module, m.version)):
                if (step.module, step.version) in done:
                    continue
                for statement in step.statements():
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                    step.module,
                    step.version,
                    int(time.time() * 1000),
                )
                applied.append((step.module, step.version))
            return applied

    async def execute(self, sql: str, args: Sequence[object] = ()) -> None:
        await self._pool.execute(sql, *args)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(sql, rows)

    async def fetch(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        return [tuple(r.values()) for r in await self._pool.fetch(sql, *args)]

    async def fetch_write(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        return await self.fetch(sql, args)  # a pooled statement commits on its own

    async def ping(self) -> None:
        await self._pool.fetchval("SELECT 1")

    async def close(self) -> None:
        await self._pool.close()
