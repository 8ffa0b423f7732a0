"""One INSERT statement for many rows given as tuples, compiled once per table and dialect.

Hot write paths (job intake) send their rows as one driver-level executemany: the statement is
compiled by SQLAlchemy once (the dialect's own placeholders, bound parameters only), and each
row is a tuple the driver takes as it is. This skips the per-row work of a Core insert
(building a parameter dict, then a processed copy of it, for every row), so values must already
be in the driver's form: `bind()` gives that form for a column (e.g. SQLite's text timestamps);
JSON columns take the document already serialised (a `str`, as the JSON type would send it).
`execute` runs in the caller's transaction; `execute_committed` in one of its own.

SQLite: the driver's own `executemany`, one call into aiosqlite's thread, where SQLAlchemy's
cursor makes three (open, executemany, close), every call a thread switch; pysqlite opens the
transaction implicitly on the first insert. PostgreSQL: one statement for the whole batch, each
column sent as one JSON array (`orjson`) that the server splits with `json_array_elements_text`:
`INSERT ... SELECT v1::type, ... FROM ROWS FROM (json_array_elements_text($1::json), ...)`.
An executemany binds and executes the insert once per row (a third more server CPU per row);
arrays (`unnest($1::type[], ...)`) cost the same on the server but asyncpg's array encoder
checks every element against `collections.abc` classes: 8.5 µs of the event loop's time per
11-column row, against 4.5 for the JSON form (16-row batches; 4.2 against 1.5 in 64-row ones).
JSON `null` comes out as SQL NULL; a JSON column's value (already a serialised document) travels
as a JSON string and is parsed once, by the cast. String columns take the text without a cast,
so a value longer than the column is refused by the insert, not cut short. `execute_committed`
sends the statement on the driver connection alone, one round trip, atomic on its own, where a
SQLAlchemy transaction adds BEGIN and COMMIT round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Enum, String, Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection


class BulkInsert:
    def __init__(self, dialect: Dialect, table: Table, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        unknown = [n for n in self.columns if n not in table.c]
        if unknown:
            raise ValueError(f"table {table.name} has no column {', '.join(unknown)}")
        # Written out rather than `table.insert()`, which orders the columns as the table does.
        quote = dialect.identifier_preparer
        into = (f"INSERT INTO {quote.format_table(table)} "
                f"({', '.join(quote.quote(n) for n in self.columns)}) ")
        compiled = text(f"{into}VALUES ({', '.join(':' + n for n in self.columns)})"
                        ).compile(dialect=dialect)
        if tuple(compiled.positiontup or ()) != self.columns:  # pragma: no cover - dialect change
            raise ValueError(f"{dialect.name}: placeholders not in column order")
        self.sql = str(compiled)
        self._processors = {n: table.c[n].type._cached_bind_processor(dialect)
                            for n in self.columns}
        self._driver = dialect.driver
        if dialect.name == "postgresql":  # one JSON array parameter per column
            numbers = range(1, len(self.columns) + 1)
            values = ", ".join(_from_text(f"v{i}", table.c[n].type, dialect)
                               for i, n in zip(numbers, self.columns, strict=True))
            split = ", ".join(f"json_array_elements_text(${i}::json)" for i in numbers)
            self.sql = (f"{into}SELECT {values} FROM ROWS FROM ({split}) "
                        f"AS r({', '.join(f'v{i}' for i in numbers)})")

    def bind(self, column: str, value: Any) -> Any:
        """`value` as the driver takes it for `column` (compute once, use in many rows)."""
        process = self._processors[column]
        return value if process is None or value is None else process(value)

    @staticmethod
    def arrays(rows: Sequence[tuple[Any, ...]]) -> tuple[str, ...]:
        """Row tuples as one JSON array per column: the PostgreSQL statement's parameters.
        Values a JSON column takes are documents already serialised (`str`): they go as JSON
        strings. Naive datetimes are taken as UTC, as asyncpg takes them; a float NaN or
        infinity would arrive as NULL (no hot path stores one)."""
        return tuple(orjson.dumps(column, option=orjson.OPT_NAIVE_UTC).decode()
                     for column in zip(*rows, strict=True))

    async def execute(self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert in the caller's transaction (its `begin()` block commits or rolls back)."""
        if not rows:
            return
        if self._driver == "aiosqlite":
            raw = await conn.get_raw_connection()
            await raw.driver_connection.executemany(self.sql, rows)
        elif self._driver == "asyncpg":
            await conn.exec_driver_sql(self.sql, self.arrays(rows))
        else:
            await conn.exec_driver_sql(self.sql, list(rows))

    async def execute_committed(self, conn: AsyncConnection,
                                rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert in a transaction of its own, committed when this returns (all rows or none).
        `conn` must have no transaction open (`engine.connect()`, nothing executed yet)."""
        if not rows:
            return
        if conn.in_transaction():
            raise RuntimeError("execute_committed needs a connection without a transaction")
        driver = (await conn.get_raw_connection()).driver_connection
        if self._driver == "asyncpg":
            await driver.execute(self.sql, *self.arrays(rows))
        elif self._driver == "aiosqlite":
            try:
                await driver.executemany(self.sql, rows)
                await driver.commit()
            except BaseException:
                await driver.rollback()
                raise
        else:
            async with conn.begin():
                await self.execute(conn, rows)



def _from_text(name: str, sql_type: Any, dialect: Dialect) -> str:
    """The column value from the text `json_array_elements_text` gives. Strings go uncast:
    the insert's own assignment checks their length (an explicit cast to VARCHAR(n) would cut
    them short)."""
    if isinstance(sql_type, String) and not isinstance(sql_type, Enum):
        return name
    return f"{name}::{sql_type.compile(dialect=dialect)}"
