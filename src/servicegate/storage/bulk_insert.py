"""One INSERT statement for many rows given as tuples, compiled once per table and dialect.

Hot write paths (job intake) send their rows as one driver-level executemany: the statement is
compiled by SQLAlchemy once (the dialect's own placeholders, bound parameters only), and each
row is a tuple the driver takes as it is. This skips the per-row work of a Core insert
(building a parameter dict, then a processed copy of it, for every row), so values must already
be in the driver's form: `bind()` gives that form for a column (e.g. SQLite's text timestamps);
JSON columns take the document already serialised (a `str`, as the JSON type would send it).
The statement runs on the caller's connection, in its transaction.

On SQLite the rows go straight to aiosqlite's `executemany`: one call into its thread, where
SQLAlchemy's cursor makes three (open, executemany, close), and every call costs a thread
switch. The transaction stays SQLAlchemy's: pysqlite opens it implicitly on the first insert,
and the caller's `begin()` block commits or rolls it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, text
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
        compiled = text(
            f"INSERT INTO {quote.format_table(table)} "
            f"({', '.join(quote.quote(n) for n in self.columns)}) "
            f"VALUES ({', '.join(':' + n for n in self.columns)})").compile(dialect=dialect)
        if tuple(compiled.positiontup or ()) != self.columns:  # pragma: no cover - dialect change
            raise ValueError(f"{dialect.name}: placeholders not in column order")
        self.sql = str(compiled)
        self._processors = {n: table.c[n].type._cached_bind_processor(dialect)
                            for n in self.columns}
        self._direct = dialect.driver == "aiosqlite"

    def bind(self, column: str, value: Any) -> Any:
        """`value` as the driver takes it for `column` (compute once, use in many rows)."""
        process = self._processors[column]
        return value if process is None or value is None else process(value)

    async def execute(self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._direct:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.executemany(self.sql, rows)
        else:
            await conn.exec_driver_sql(self.sql, list(rows))
