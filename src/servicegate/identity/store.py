"""The gateway's own identities: upsert (one transaction per batch), delete, get, search."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

import asyncpg
from sqlalchemy import Dialect, delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.clock import utcnow
from servicegate.identity.model import ADDRESS_COLUMNS, IDENTITY_COLUMNS, Identity
from servicegate.identity.odata import DEFAULT_LIMITS, Limits
from servicegate.identity.parsing import RowFormat, rows_of
from servicegate.identity.properties import identity_properties
from servicegate.identity.search import IdentitySearch
from servicegate.storage.schema import identities, identity_addresses


class Refused(Exception):
    """The database refused a write (constraint, trigger...); the transaction was rolled back."""


async def _render(_conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> list[bytes]:
    return [row[0].encode() for row in rows]


class IdentityStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def searcher(self, limits: Limits = DEFAULT_LIMITS) -> IdentitySearch:
        """Searches over these tables."""
        return IdentitySearch(self.engine, identity_properties(), [identities.c.doc], _render,
                              limits)

    def row_format(self) -> RowFormat:
        """How rows for this database are built (`parsing.rows_of`), stamped now."""
        now = utcnow()
        if self.dialect == "postgresql":
            return RowFormat(now, text_dates=False)
        return RowFormat(_sqlite_stamp(self.engine.dialect)(now), text_dates=True)

    async def upsert_many(self, batch: Sequence[Identity], conn: AsyncConnection | None = None,
                          *, bulk: bool = False) -> None:
        """Write a batch in one transaction: each identity with all its addresses, or none."""
        fmt = self.row_format()
        rows, addresses = [], []
        for identity in batch:
            row, its_addresses = rows_of(identity, fmt)
            rows.append(row)
            addresses.extend(its_addresses)
        await self.write_rows(rows, addresses, conn, bulk=bulk)

    async def write_rows(self, rows: Values, addresses: Values,
                         conn: AsyncConnection | None = None, *, bulk: bool = False,
                         new: bool = False) -> None:
        """Upsert identity rows (replacing their addresses with `addresses`) in one
        transaction; raises Refused when the database refuses any of it. `bulk` (the
        importer): give SQLite a page cache that holds the indexes being filled. `new`:
        the ids are expected not to exist yet (an initial load into an empty table), so
        the rows are inserted plainly, without the upsert's staging and address deletion;
        an id that does exist makes the whole write Refused (the caller then upserts)."""
        if not rows:
            return
        if conn is None:
            try:
                async with self.engine.begin() as own:
                    await self.write_rows(rows, addresses, own, bulk=bulk, new=new)
            except (DBAPIError, asyncpg.PostgresError) as exc:
                orig = getattr(exc, "orig", None) or exc
                raise Refused(str(orig).strip().splitlines()[0] if str(orig).strip()
                              else type(orig).__name__) from exc
            return
        if self.dialect == "postgresql":
            await (_postgres_insert if new else _postgres_upsert)(conn, rows, addresses)
        else:
            await _sqlite_upsert(conn, rows, addresses, bulk, new)

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
_ID_COLUMNS = list(IDENTITY_COLUMNS)
_ADDRESS_COLUMNS = list(ADDRESS_COLUMNS)
assert set(_ID_COLUMNS) == {c.name for c in identities.columns}
assert set(_ADDRESS_COLUMNS) == {c.name for c in identity_addresses.columns}
_SET = ", ".join(f"{c} = excluded.{c}" for c in _ID_COLUMNS if c != "id")
_STAGE = "identities_stage"
Values = list[tuple[Any, ...]]


def _sqlite_stamp(dialect: Dialect) -> Callable[[Any], Any]:
    """updated_at as SQLAlchemy stores a DateTime on SQLite (read back the same way)."""
    column = identities.c.updated_at.type
    return column.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)


async def _sqlite_upsert(conn: AsyncConnection, rows: Values, addresses: Values,
                         bulk: bool, new: bool) -> None:
    if bulk:  # the index pages a million-row import keeps touching (a few hundred MB)
        await conn.exec_driver_sql("PRAGMA cache_size=-262144")
    if new:  # an existing id fails the insert (primary key), which rolls all of it back
        await _insert_chunked(conn, "identities", _ID_COLUMNS, rows, "")
    else:
        await _insert_chunked(conn, "identities", _ID_COLUMNS, rows,
                              f" ON CONFLICT (id) DO UPDATE SET {_SET}")
        await conn.exec_driver_sql(
            f"DELETE FROM identity_addresses WHERE identity_id IN "
            f"({', '.join('?' * len(rows))})", tuple(r[0] for r in rows))
    if addresses:
        await _insert_chunked(conn, "identity_addresses", _ADDRESS_COLUMNS, addresses, "")


_CHUNK_PARAMETERS = 999  # SQLite's historic bound-parameter limit (3.32+ allows 32766)


async def _insert_chunked(conn: AsyncConnection, table: str, columns: list[str],
                          values: Values, suffix: str) -> None:
    """Multi-row INSERTs: one statement step per ~50 rows instead of one per row.

    The sqlite3 module releases the GIL around each step and must take it back before the
    next one; while the importer parses the next batch, every such hand-back waits for the
    interpreter's switch interval. Fewer, larger steps let the database work run beside
    the parsing instead of in turns with it (and cost less to bind)."""
    per = max(1, _CHUNK_PARAMETERS // len(columns))
    row = f"({', '.join('?' * len(columns))})"
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    whole = len(values) - len(values) % per
    flat = chain.from_iterable
    if whole:
        await conn.exec_driver_sql(head + ", ".join([row] * per) + suffix, [
            tuple(flat(values[i:i + per])) for i in range(0, whole, per)])
    if whole < len(values):
        rest = values[whole:]
        await conn.exec_driver_sql(head + ", ".join([row] * len(rest)) + suffix,
                                   tuple(flat(rest)))


async def _driver(conn: AsyncConnection) -> asyncpg.Connection:
    raw = await conn.get_raw_connection()
    pg = raw.driver_connection
    assert pg is not None and pg.is_in_transaction(), "bulk writes need the open transaction"
    return pg


async def _postgres_insert(conn: AsyncConnection, rows: Values, addresses: Values) -> None:
    """Binary COPY straight into the tables (ids expected new; an existing one fails the
    primary key and rolls the transaction back)."""
    await conn.exec_driver_sql("SELECT 1")  # through SQLAlchemy: opens the transaction
    pg = await _driver(conn)
    await pg.copy_records_to_table("identities", records=rows, columns=_ID_COLUMNS)
    if addresses:
        await pg.copy_records_to_table("identity_addresses", records=addresses,
                                       columns=_ADDRESS_COLUMNS)


async def _postgres_upsert(conn: AsyncConnection, rows: Values, addresses: Values) -> None:
    """Binary COPY into a session-local staging table, then one upsert statement."""
    # through SQLAlchemy first: that opens the transaction the raw calls below then share
    await conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
                               "(LIKE identities INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    pg = await _driver(conn)
    await pg.copy_records_to_table(_STAGE, records=rows, columns=_ID_COLUMNS)
    cols = ", ".join(_ID_COLUMNS)
    await pg.execute(f"INSERT INTO identities ({cols}) SELECT {cols} FROM {_STAGE} "
                     f"ON CONFLICT (id) DO UPDATE SET {_SET}")
    # by the primary-key index (a join with the unanalyzed temp table may scan the whole table)
    await pg.execute("DELETE FROM identity_addresses WHERE identity_id = ANY($1::text[])",
                     [r[0] for r in rows])
    if addresses:
        await pg.copy_records_to_table("identity_addresses", records=addresses,
                                       columns=_ADDRESS_COLUMNS)
