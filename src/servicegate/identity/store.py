"""The gateway's own identities: upsert (one transaction per batch), delete, get, search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import Row, delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.clock import utcnow
from servicegate.identity.model import Identity, address_rows, identity_row
from servicegate.identity.odata import DEFAULT_LIMITS, Limits
from servicegate.identity.properties import identity_properties
from servicegate.identity.search import IdentitySearch
from servicegate.storage.schema import identities, identity_addresses


class Refused(Exception):
    """The database refused a write (constraint, trigger...); the transaction was rolled back."""


async def _render(_conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[bytes]:
    return [row[0].encode() for row in rows]


class IdentityStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def searcher(self, limits: Limits = DEFAULT_LIMITS) -> IdentitySearch:
        return IdentitySearch(self.engine, identity_properties(), [identities.c.doc], _render,
                              limits)

    async def upsert_many(self, batch: Sequence[Identity], conn: AsyncConnection | None = None,
                          *, bulk: bool = False) -> None:
        """Write a batch in one transaction: each identity with all its addresses, or none.
        `bulk` (the importer): give SQLite a page cache that holds the indexes being filled."""
        if not batch:
            return
        if conn is None:
            try:
                async with self.engine.begin() as own:
                    await self.upsert_many(batch, own, bulk=bulk)
            except (DBAPIError, asyncpg.PostgresError) as exc:
                orig = getattr(exc, "orig", None) or exc
                raise Refused(str(orig).strip().splitlines()[0] if str(orig).strip()
                              else type(orig).__name__) from exc
            return
        now = utcnow()
        rows = [identity_row(i, now) for i in batch]
        addresses = [a for i in batch for a in address_rows(i)]
        if self.dialect == "postgresql":
            await _postgres_upsert(conn, rows, addresses)
        else:
            await _sqlite_upsert(conn, rows, addresses, bulk)

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
        from sqlalchemy import func

        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(identities))).scalar_one())


# -- bulk writes: the driver directly (the import path must reach >= 20,000 identities/s) ------
_ID_COLUMNS = [c.name for c in identities.columns]
_ADDRESS_COLUMNS = [c.name for c in identity_addresses.columns]
_SET = ", ".join(f"{c} = excluded.{c}" for c in _ID_COLUMNS if c != "id")
_STAGE = "identities_stage"


def _tuples(rows: list[dict[str, Any]], columns: list[str], convert: dict[str, Any]
            ) -> list[tuple[Any, ...]]:
    if not convert:
        return [tuple(r[c] for c in columns) for r in rows]
    return [tuple(convert[c](r[c]) if c in convert else r[c] for c in columns) for r in rows]


async def _sqlite_upsert(conn: AsyncConnection, rows: list[dict[str, Any]],
                         addresses: list[dict[str, Any]], bulk: bool) -> None:
    if bulk:  # the index pages a million-row import keeps touching (a few hundred MB)
        await conn.exec_driver_sql("PRAGMA cache_size=-262144")
    dialect = conn.dialect
    convert = {c.name: proc for c in identities.columns
               if (proc := c.type.bind_processor(dialect)) is not None}
    cols = ", ".join(_ID_COLUMNS)
    marks = ", ".join("?" * len(_ID_COLUMNS))
    await conn.exec_driver_sql(
        f"INSERT INTO identities ({cols}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {_SET}",
        _tuples(rows, _ID_COLUMNS, convert))  # type: ignore[arg-type]
    await conn.exec_driver_sql(
        f"DELETE FROM identity_addresses WHERE identity_id IN ({', '.join('?' * len(rows))})",
        tuple(r["id"] for r in rows))
    if addresses:
        await conn.exec_driver_sql(
            f"INSERT INTO identity_addresses ({', '.join(_ADDRESS_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_ADDRESS_COLUMNS))})",
            _tuples(addresses, _ADDRESS_COLUMNS, {}))  # type: ignore[arg-type]


async def _postgres_upsert(conn: AsyncConnection, rows: list[dict[str, Any]],
                           addresses: list[dict[str, Any]]) -> None:
    """Binary COPY into a session-local staging table, then one upsert statement."""
    # through SQLAlchemy first: that opens the transaction the raw calls below then share
    await conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
                               "(LIKE identities INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    raw = await conn.get_raw_connection()
    pg = raw.driver_connection
    assert pg is not None and pg.is_in_transaction(), "bulk writes need the open transaction"
    await pg.copy_records_to_table(_STAGE, records=_tuples(rows, _ID_COLUMNS, {}),
                                   columns=_ID_COLUMNS)
    cols = ", ".join(_ID_COLUMNS)
    await pg.execute(f"INSERT INTO identities ({cols}) SELECT {cols} FROM {_STAGE} "
                     f"ON CONFLICT (id) DO UPDATE SET {_SET}")
    # by the primary-key index (a join with the unanalyzed temp table may scan the whole table)
    await pg.execute("DELETE FROM identity_addresses WHERE identity_id = ANY($1::text[])",
                     [r["id"] for r in rows])
    if addresses:
        await pg.copy_records_to_table("identity_addresses",
                                       records=_tuples(addresses, _ADDRESS_COLUMNS, {}),
                                       columns=_ADDRESS_COLUMNS)
