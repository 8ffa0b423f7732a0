"""Initial loads without index maintenance: drop the secondary indexes, load, rebuild them.

Inserting a million rows into eight B-trees (and a trigram index) one by one costs several
times more than building those indexes once, sorted, at the end. When an import starts on an
empty identities table, the secondary index definitions are read from the database catalog,
stashed in a table (`identity_index_stash`), dropped, and re-created when the load ends, also
when it fails. If the process dies hard in between, the next import (or `recover`) re-creates
them from the stash.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

STASH = "identity_index_stash"
TABLES = ("identities", "identity_addresses")


async def _definitions(conn: AsyncConnection) -> list[tuple[str, str]]:
    if conn.dialect.name == "sqlite":
        rows = await conn.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('identities', 'identity_addresses') ORDER BY name"))
    else:
        rows = await conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename IN ('identities', 'identity_addresses') AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint) ORDER BY indexname"))
    return [(r[0], r[1]) for r in rows]


async def _stash_exists(conn: AsyncConnection) -> bool:
    if conn.dialect.name == "sqlite":
        found = await conn.execute(text(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n"), {"n": STASH})
    else:
        found = await conn.execute(text("SELECT to_regclass(:n)"), {"n": STASH})
        return found.scalar() is not None
    return found.first() is not None


async def recover(engine: AsyncEngine, parallel: int = 1) -> int:
    """Re-create indexes stashed by an interrupted initial load; the number re-created.

    On PostgreSQL, with `parallel` > 1, that many indexes are built at once, each on its
    own connection (index builds are CPU-bound; the trigram index alone takes as long as
    several B-trees). SQLite has one writer, so its indexes are built one after another.
    Each index is committed as it is built and the stash is dropped last, so a process that
    dies half-way leaves the rest to the next `recover`."""
    async with engine.connect() as conn:
        if not await _stash_exists(conn):
            return 0
        stashed = [(r[0], r[1]) for r in await conn.execute(text(f"SELECT name, ddl FROM {STASH}"))]
        present = {name for name, _ in await _definitions(conn)}
    missing = [ddl for name, ddl in stashed if name not in present]
    if engine.dialect.name == "postgresql" and parallel > 1:
        gate = asyncio.Semaphore(parallel)

        async def build(ddl: str) -> None:
            async with gate, engine.begin() as own:
                await own.execute(text(ddl))

        await asyncio.gather(*(build(ddl) for ddl in missing))
    else:
        for ddl in missing:
            async with engine.begin() as conn:
                await conn.execute(text(ddl))
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {STASH}"))
    return len(stashed)


async def _empty(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT 1 FROM identities LIMIT 1"))).first() is None


@asynccontextmanager
async def deferred_indexes(engine: AsyncEngine, *, enabled: bool = True,
                           parallel: int = 1) -> AsyncIterator[bool]:
    """Yield True when the indexes were dropped for this (initial) load; they are rebuilt
    afterwards `parallel` at a time (see `recover`)."""
    await recover(engine)
    if not enabled or not await _empty(engine):
        yield False
        return
    async with engine.begin() as conn:
        definitions = await _definitions(conn)
        await conn.execute(text(f"CREATE TABLE {STASH} (name VARCHAR(200), ddl TEXT)"))
        for name, ddl in definitions:
            await conn.execute(text(f"INSERT INTO {STASH} (name, ddl) VALUES (:n, :d)"),
                               {"n": name, "d": ddl})
            await conn.execute(text(f'DROP INDEX "{name}"'))
    try:
        yield True
    finally:
        await recover(engine, parallel)
