"""The gateway's own identities: upsert (one transaction per batch), delete, get, search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.clock import utcnow
from servicegate.identity.model import ADDRESS_COLUMNS, IDENTITY_COLUMNS, Identity
from servicegate.identity.odata import DEFAULT_LIMITS, Limits
from servicegate.identity.parsing import Row, rows_of
from servicegate.identity.properties import identity_properties
from servicegate.identity.search import IdentitySearch
from servicegate.storage.bulk_load import BulkLoad, EngineBulkLoad
from servicegate.storage.schema import identities, identity_addresses

assert set(IDENTITY_COLUMNS) == {c.name for c in identities.columns}
assert set(ADDRESS_COLUMNS) == {c.name for c in identity_addresses.columns}


class Refused(Exception):
    """The database refused a write (constraint, trigger...); the transaction was rolled back."""


async def _render(_conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> list[bytes]:
    return [row[0].encode() for row in rows]


class IdentityStore:
    def __init__(self, engine: AsyncEngine, loader: BulkLoad | None = None) -> None:
        """`loader`: how batches of rows are written (`storage/bulk_load.py`); Core
        statements by default, the driver's bulk path for the importer."""
        self.engine = engine
        self.dialect = engine.dialect.name
        self.loader = loader or EngineBulkLoad()

    def searcher(self, limits: Limits = DEFAULT_LIMITS) -> IdentitySearch:
        """Searches over these tables."""
        return IdentitySearch(self.engine, identity_properties(), [identities.c.doc], _render,
                              limits)

    async def upsert_many(self, batch: Sequence[Identity], conn: AsyncConnection | None = None,
                          *, bulk: bool = False) -> None:
        """Write a batch in one transaction: each identity with all its addresses, or none."""
        stamp = utcnow()
        rows, addresses = [], []
        for identity in batch:
            row, its_addresses = rows_of(identity, stamp)
            rows.append(row)
            addresses.extend(its_addresses)
        await self.write_rows(rows, addresses, conn, bulk=bulk)

    async def write_rows(self, rows: list[Row], addresses: list[Row],
                         conn: AsyncConnection | None = None, *, bulk: bool = False,
                         new: bool = False) -> None:
        """Upsert identity rows (replacing their addresses with `addresses`) in one
        transaction; raises Refused when the database refuses any of it. `bulk` (the
        importer): give SQLite a page cache that holds the indexes being filled. `new`:
        the ids are expected not to exist yet (an initial load into an empty table), so
        the rows are inserted plainly, without the upsert's address deletion; an id that
        does exist makes the whole write Refused (the caller then upserts)."""
        if not rows:
            return
        if conn is None:
            try:
                async with self.engine.begin() as own:
                    await self.write_rows(rows, addresses, own, bulk=bulk, new=new)
            except DBAPIError as exc:
                orig = str(exc.orig).strip() or type(exc.orig).__name__
                raise Refused(orig.splitlines()[0]) from exc
            return
        if bulk and self.dialect == "sqlite":
            # the index pages a million-row import keeps touching (a few hundred MB)
            await conn.exec_driver_sql("PRAGMA cache_size=-262144")
        if new:
            await self.loader.insert(conn, identities, IDENTITY_COLUMNS, rows)
        else:
            await self.loader.upsert(conn, identities, IDENTITY_COLUMNS, rows)
            await conn.execute(delete(identity_addresses).where(
                identity_addresses.c.identity_id.in_([row[0] for row in rows])))
        await self.loader.insert(conn, identity_addresses, ADDRESS_COLUMNS, addresses)

    async def put(self, identity: Identity) -> bool:
        """Create or replace; True when it was created."""
        async with self.engine.begin() as conn:
            existed = (await conn.execute(
                select(identities.c.id).where(identities.c.id == identity.id))).first()
            await self.upsert_many([identity], conn)
        return existed is None

    async def get(self, identity_id: str) -> bytes | None:
        async with self.engine.connect() as conn:
            doc = (await conn.execute(
                select(identities.c.doc).where(identities.c.id == identity_id))).scalar()
        return None if doc is None else doc.encode()

    async def delete(self, identity_id: str) -> bool:
        async with self.engine.begin() as conn:
            await conn.execute(delete(identity_addresses)
                               .where(identity_addresses.c.identity_id == identity_id))
            result = await conn.execute(delete(identities).where(identities.c.id == identity_id))
        return bool(result.rowcount)

    async def analyze(self) -> None:
        """After a bulk load: refresh planner statistics (sampled on SQLite: fast); on
        PostgreSQL also VACUUM, which sets the visibility map so counts are index-only scans
        instead of visiting every matching row in the heap."""
        if self.dialect == "sqlite":
            async with self.engine.begin() as conn:
                await conn.exec_driver_sql("PRAGMA analysis_limit=2000")
                await conn.exec_driver_sql("ANALYZE identities")
                await conn.exec_driver_sql("ANALYZE identity_addresses")
            return
        async with self.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.exec_driver_sql("VACUUM (ANALYZE) identities, identity_addresses")

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(identities))).scalar_one())
