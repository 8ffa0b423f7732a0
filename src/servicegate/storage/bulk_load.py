"""Loading many rows at once (the identity importer): one protocol, an engine implementation by
default, and the database drivers' own bulk paths where the importer needs their speed.

- `EngineBulkLoad`: Core statements on the caller's connection: an executemany INSERT, or
  `INSERT ... ON CONFLICT (primary key) DO UPDATE` for an upsert.
- `PostgresCopy`: asyncpg's binary COPY into the table (an upsert: into a session-local staging
  table, then one `INSERT ... SELECT ... ON CONFLICT` statement).
- `SqliteMultiRow`: multi-row INSERTs of about a thousand parameters each, one statement step
  per ~50 rows. The sqlite3 module releases the GIL around each step and must take it back
  before the next one; while the importer parses the next batch, every such hand-back waits
  for the interpreter's switch interval, so fewer, larger steps let the database work run
  beside the parsing instead of in turns with it.

`driver_bulk_load(engine)` picks the driver path for the engine's backend (`EngineBulkLoad`
for any other). Every implementation takes the same rows (tuples of Python values in the
order of `columns`, as a Core insert takes them) and stores the same rows: an equivalence test
holds them to it. All of them write in the caller's transaction (`engine.begin()`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, Protocol

import asyncpg
from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Rows = Sequence[tuple[Any, ...]]


class BulkLoad(Protocol):
    async def insert(self, conn: AsyncConnection, table: Table, columns: Sequence[str],
                     rows: Rows) -> None:
        """Insert new rows; a primary key that exists fails the statement (and the caller's
        transaction)."""
        ...

    async def upsert(self, conn: AsyncConnection, table: Table, columns: Sequence[str],
                     rows: Rows) -> None:
        """Insert rows, each replacing the row with its primary key if there is one."""
        ...


def _key(table: Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def _updated(table: Table, columns: Sequence[str]) -> list[str]:
    key = _key(table)
    return [c for c in columns if c not in key]


def _names(conn: AsyncConnection, names: Sequence[str]) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return ", ".join(quote(n) for n in names)


def _on_conflict(conn: AsyncConnection, table: Table, columns: Sequence[str]) -> str:
    """The upsert clause: the row with the same primary key takes the new values."""
    quote = conn.dialect.identifier_preparer.quote
    update = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in _updated(table, columns))
    return f" ON CONFLICT ({_names(conn, _key(table))}) DO UPDATE SET {update}"


class EngineBulkLoad:
    async def insert(self, conn: AsyncConnection, table: Table, columns: Sequence[str],
                     rows: Rows) -> None:
        if rows:
            await conn.execute(insert(table), [dict(zip(columns, row, strict=True))
                                               for row in rows])

    async def upsert(self, conn: AsyncConnection, table: Table, columns: Sequence[str],
                     rows: Rows) -> None:
        if not rows:
            return
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=_key(table),
            set_={name: stmt.excluded[name] for name in _updated(table, columns)})
        await conn.execute(stmt, [dict(zip(columns, row, strict=True)) for row in rows])


class PostgresCopy:
    async def insert(self, conn: AsyncConnection, table: Table, columns: Sequence[str],
                     rows: Rows) -> None:
        if rows:
            await _copy(await _in_transaction(conn), table.name, columns, rows, table.schema)

    async def upsert(self, conn: AsyncConnection, table: Table, columns: Sequence[str],
                     rows: Rows) -> None:
        if not rows:
            return
        target = conn.dialect.identifier_preparer.format_table(table)
        stage = conn.dialect.identifier_preparer.quote(f"{table.name}_stage")
        await conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                                   f"(LIKE {target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        await _copy(await _in_transaction(conn), f"{table.name}_stage", columns, rows)
        names = _names(conn, columns)
        await conn.exec_driver_sql(f"INSERT INTO {target} ({names}) SELECT {names} "
                                   f"FROM {stage}{_on_conflict(conn, table, columns)}")


async def _in_transaction(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn`, inside the caller's transaction (begun through
    SQLAlchemy first if nothing ran in it yet, so that the driver's writes share it)."""
    if not conn.in_transaction():
        raise RuntimeError("bulk loads write in the caller's transaction (engine.begin())")
    await conn.exec_driver_sql("SELECT 1")  # the driver-level BEGIN, if not sent yet
    return (await conn.get_raw_connection()).driver_connection


async def _copy(pg: asyncpg.Connection, table: str, columns: Sequence[str], rows: Rows,
                schema: str | None = None) -> None:
    """Binary COPY; an error the server reports is raised as SQLAlchemy's, as the engine
    raises it for any other statement."""
    try:
        await pg.copy_records_to_table(table, records=rows, columns=list(columns),
                                       schema_name=schema)
    except asyncpg.PostgresError as exc:
        raise DBAPIError(f"COPY {table}", None, exc) from exc


# SQLite's historic bound-parameter limit (3.32+ allows 32766): a statement's rows
_SQLITE_PARAMETERS = 999


class SqliteMultiRow:
    async def insert(self, conn: AsyncConnection, table: Table, columns: Sequence[str],
                     rows: Rows) -> None:
        await self._write(conn, table, columns, rows, "")

    async def upsert(self, conn: AsyncConnection, table: Table, columns: Sequence[str],
                     rows: Rows) -> None:
        await self._write(conn, table, columns, rows, _on_conflict(conn, table, columns))

    async def _write(self, conn: AsyncConnection, table: Table, columns: Sequence[str],
                     rows: Rows, suffix: str) -> None:
        if not rows:
            return
        rows = _bound(conn, table, columns, rows)
        per = max(1, _SQLITE_PARAMETERS // len(columns))
        row = f"({', '.join('?' * len(columns))})"
        target = conn.dialect.identifier_preparer.format_table(table)
        head = f"INSERT INTO {target} ({_names(conn, columns)}) VALUES "
        whole = len(rows) - len(rows) % per
        flat = chain.from_iterable
        if whole:
            await conn.exec_driver_sql(head + ", ".join([row] * per) + suffix, [
                tuple(flat(rows[i:i + per])) for i in range(0, whole, per)])
        if whole < len(rows):
            rest = rows[whole:]
            await conn.exec_driver_sql(head + ", ".join([row] * len(rest)) + suffix,
                                       tuple(flat(rest)))


def _bound(conn: AsyncConnection, table: Table, columns: Sequence[str], rows: Rows) -> Rows:
    """Rows with each value as the column's type binds it for the driver (SQLite: dates and
    times as text), as a Core insert would send them. A value repeated from the previous row
    (a batch's timestamp) is converted once."""
    dialect = conn.dialect
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(columns):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((i, process))
    if not processors:
        return rows
    last: dict[int, tuple[Any, Any]] = {}
    out = []
    for row in rows:
        values = list(row)
        for i, process in processors:
            value = values[i]
            if value is not None:
                seen = last.get(i)
                if seen is None or seen[0] is not value:
                    seen = last[i] = (value, process(value))
                values[i] = seen[1]
        out.append(tuple(values))
    return out


def driver_bulk_load(engine: AsyncEngine) -> BulkLoad:
    """The driver's bulk path for the engine's backend (the importer's choice)."""
    if engine.dialect.name == "postgresql":
        return PostgresCopy()
    if engine.dialect.name == "sqlite":
        return SqliteMultiRow()
    return EngineBulkLoad()
