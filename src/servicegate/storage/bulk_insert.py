"""One INSERT statement for many rows given as tuples, compiled once per table and dialect.

Hot write paths (job intake) send their rows as one driver-level executemany: the statement is
compiled by SQLAlchemy once (the dialect's own placeholders, bound parameters only), and each
row is a tuple the driver takes as it is. This skips the per-row work of a Core insert
(building a parameter dict, then a processed copy of it, for every row), so values must already
be in the driver's form: `bind()` gives that form for a column (e.g. SQLite's text timestamps);
JSON columns take the document already serialised (a `str`, as the JSON type would send it).
`execute` runs in the caller's transaction; `execute_committed` in one of its own.

Columns are of two kinds: `columns`, one value per row (the row tuples), and `shared`, one
value for the whole batch (the queue's status and due time, the time of a group's
transaction), given once to `execute` and sent once.

SQLite: the driver's own `executemany`, one call into aiosqlite's thread, where SQLAlchemy's
cursor makes three (open, executemany, close), every call a thread switch; pysqlite opens the
transaction implicitly on the first insert. Shared values are appended to every row.

PostgreSQL: one statement for the whole batch. Each per-row column is sent as one JSON array
(`orjson`) that the server splits (a JSON column: as joined text, below), each shared value as
one parameter:
`INSERT ... SELECT v1::type, ..., $6::type FROM ROWS FROM (json_array_elements_text($1::json),
...)`. Measured on the jobs table, 16-row batches (bench/RESULTS.md, sixth session):
- an executemany binds and executes the insert once per row: a third more server CPU per row;
- arrays (`unnest($1::type[], ...)`, what this sent before) cost the event loop 8.5 µs per
  11-column row: asyncpg's array encoder checks every element against `collections.abc`
  classes. JSON arrays cost it 4.5 (1.5 in 64-row batches), and the server 3 µs more per row
  to split them;
- a value shared by the batch sent once instead of in every row: 4 µs less server CPU per row.
- a JSON column's values (serialised documents, the biggest values: a job's stored request)
  go as one text, joined by RS (U+001E; a NULL as US, U+001F), which
  `unnest(string_to_array(...))` splits: in a JSON array each document was a JSON string, so
  the server parsed it three times (receiving the array, splitting it, the cast) and unescaped
  it one character at a time; now only the cast parses it. Jobs' 32-row batches: 13.3-14.4 ->
  12.1-12.7 µs of server CPU per row (bench/RESULTS.md, seventh session). Neither separator
  can occur in a JSON document (a value holding one, or an empty one, is refused).
JSON `null` in another column comes out as SQL NULL; a JSON `null` document stays a document.
String columns take the text without a cast (a shared one: cast to `text`), so a value longer
than the column is refused by the insert, not cut short. `execute_committed` sends the
statement on the driver connection alone, one round trip, atomic on its own, where a SQLAlchemy
transaction adds BEGIN and COMMIT round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Enum, String, Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Rows = Sequence[tuple[Any, ...]]


class BulkInsert:
    def __init__(self, dialect: Dialect, table: Table, columns: Sequence[str],
                 shared: Sequence[str] = ()) -> None:
        self.columns = tuple(columns)
        self.shared = tuple(shared)
        names = (*self.columns, *self.shared)
        if not self.columns:
            raise ValueError("a bulk insert needs one column with a value per row at least")
        unknown = [n for n in names if n not in table.c]
        if unknown:
            raise ValueError(f"table {table.name} has no column {', '.join(unknown)}")
        # Written out rather than `table.insert()`, which orders the columns as the table does.
        quote = dialect.identifier_preparer
        into = (f"INSERT INTO {quote.format_table(table)} "
                f"({', '.join(quote.quote(n) for n in names)}) ")
        compiled = text(f"{into}VALUES ({', '.join(':' + n for n in names)})"
                        ).compile(dialect=dialect)
        if tuple(compiled.positiontup or ()) != names:  # pragma: no cover - dialect change
            raise ValueError(f"{dialect.name}: placeholders not in column order")
        self.sql = str(compiled)
        self._processors = {n: table.c[n].type._cached_bind_processor(dialect) for n in names}
        self._driver = dialect.driver
        # per-row JSON columns: their documents travel joined by RS (`_joined`) on PostgreSQL
        self._documents = tuple(isinstance(table.c[n].type, JSON) for n in self.columns)
        if dialect.name == "postgresql":
            per_row = range(1, len(self.columns) + 1)
            values = [_cast(f"v{i}", table.c[n].type, dialect, text_as_is=True)
                      for i, n in zip(per_row, self.columns, strict=True)]
            values += [_cast(f"${i}", table.c[n].type, dialect, text_as_is=False)
                       for i, n in enumerate(self.shared, len(self.columns) + 1)]
            split = ", ".join(
                f"unnest(string_to_array(${i}::text, E'\\x1e', E'\\x1f'))" if document
                else f"json_array_elements_text(${i}::json)"
                for i, document in zip(per_row, self._documents, strict=True))
            self.sql = (f"{into}SELECT {', '.join(values)} FROM ROWS FROM ({split}) "
                        f"AS r({', '.join(f'v{i}' for i in per_row)})")

    def bind(self, column: str, value: Any) -> Any:
        """`value` as the driver takes it for `column` (compute once, use in many rows)."""
        process = self._processors[column]
        return value if process is None or value is None else process(value)

    def parameters(self, rows: Rows, shared: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """The PostgreSQL statement's parameters: one JSON array per per-row column (a JSON
        column's documents, already serialised `str`s: joined by RS), then the shared values.
        Naive datetimes are taken as UTC, as asyncpg takes them; a float NaN or infinity in a
        row would arrive as NULL (no hot path stores one)."""
        self._check(shared)
        return (*(_joined(column) if document
                  else orjson.dumps(column, option=orjson.OPT_NAIVE_UTC).decode()
                  for column, document in zip(zip(*rows, strict=True), self._documents,
                                              strict=True)), *shared)

    def rows(self, rows: Rows, shared: tuple[Any, ...] = ()) -> Rows:
        """Complete rows for an executemany: the shared values appended to each."""
        self._check(shared)
        return [(*row, *shared) for row in rows] if shared else rows

    def _check(self, shared: tuple[Any, ...]) -> None:
        if len(shared) != len(self.shared):
            raise ValueError(f"{len(self.shared)} shared values expected, got {len(shared)}")

    async def execute(self, conn: AsyncConnection, rows: Rows,
                      shared: tuple[Any, ...] = ()) -> None:
        """Insert in the caller's transaction (its `begin()` block commits or rolls back)."""
        if not rows:
            return
        if self._driver == "aiosqlite":
            raw = await conn.get_raw_connection()
            await raw.driver_connection.executemany(self.sql, self.rows(rows, shared))
        elif self._driver == "asyncpg":
            await conn.exec_driver_sql(self.sql, self.parameters(rows, shared))
        else:
            await conn.exec_driver_sql(self.sql, list(self.rows(rows, shared)))

    async def execute_committed(self, conn: AsyncConnection, rows: Rows,
                                shared: tuple[Any, ...] = ()) -> None:
        """Insert in a transaction of its own, committed when this returns (all rows or none).
        `conn` must have no transaction open (`engine.connect()`, nothing executed yet)."""
        if not rows:
            return
        if conn.in_transaction():
            raise RuntimeError("execute_committed needs a connection without a transaction")
        driver = (await conn.get_raw_connection()).driver_connection
        if self._driver == "asyncpg":
            await driver.execute(self.sql, *self.parameters(rows, shared))
        elif self._driver == "aiosqlite":
            try:
                await driver.executemany(self.sql, self.rows(rows, shared))
                await driver.commit()
            except BaseException:
                await driver.rollback()
                raise
        else:
            async with conn.begin():
                await self.execute(conn, rows, shared)


_RS, _US = "\x1e", "\x1f"  # record and unit separators


def _joined(documents: Sequence[str | None]) -> str:
    """A JSON column's values (serialised documents, None for SQL NULL) as one text: separated
    by RS, NULL written as US. Neither occurs in a JSON document (control characters are
    escaped inside strings and are not whitespace outside them); a value holding one, or an
    empty one, would split into other rows than it is, so it is refused."""
    nulls = documents.count(None)
    values = [_US if d is None else d for d in documents] if nulls else documents
    if "" in values:
        raise ValueError("an empty string is not a JSON document")
    joined = _RS.join(values)  # type: ignore[arg-type]
    if joined.count(_RS) != len(values) - 1 or joined.count(_US) != nulls:
        raise ValueError("a JSON document holds a control character (U+001E or U+001F)")
    return joined


def _cast(value: str, sql_type: Any, dialect: Dialect, *, text_as_is: bool) -> str:
    """`value` (the text `json_array_elements_text` gives, or a parameter) as the column's
    type. Strings are never cast to VARCHAR(n), which would cut them short: the insert's own
    assignment checks their length. (A parameter needs a type: `text`.)"""
    if isinstance(sql_type, String) and not isinstance(sql_type, Enum):
        return value if text_as_is else f"{value}::text"
    return f"{value}::{sql_type.compile(dialect=dialect)}"
