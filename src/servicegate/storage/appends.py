"""Batches of new rows committed on their own (group commit's writes: job intake), on the raw
driver, without a pool checkout per batch.

Under load a group-commit writer usually finds nothing waiting after its write and gives its
session back, so each batch paid a checkout: on PostgreSQL the main pool's ping, which
SQLAlchemy's asyncpg dialect wraps in BEGIN/ROLLBACK (three round trips before the insert);
on SQLite four hops to aiosqlite's thread (checkout, executemany, commit, reset).

- SQLite (`SqliteAppends`): one thread of its own with its own connection to the file; a
  batch is `BEGIN IMMEDIATE`, the executemany and COMMIT in one call to that thread.
- PostgreSQL (`PostgresAppends`): an asyncpg pool of its own (`storage/driver_pool.py`), a
  connection per writer; a batch is one statement (`BulkInsert`'s unnest form), atomic on
  its own, one round trip. A connection lost during a write fails that batch (its callers
  get the error: a write is never retried blindly, as it may have committed).

Both are opened on first use and may be used again after `close()`. `EngineAppends` is the
fallback through an engine connection (an in-memory SQLite database, seen only by its engine).
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.storage.bulk_insert import BulkInsert
from servicegate.storage.driver_pool import DriverPool


class Appends(Protocol):
    async def append(self, insert: BulkInsert, rows: list[tuple[Any, ...]]) -> None:
        """Insert `rows` (tuples of `insert.columns`, in the driver's form) and commit."""
        ...

    async def close(self) -> None: ...


class SqliteAppends:
    def __init__(self, path: str) -> None:
        self.path = path
        self.thread: ThreadPoolExecutor | None = None
        self.conn: sqlite3.Connection | None = None  # used only on `thread`

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self.conn is None:
            self.conn = sqlite3.connect(self.path, isolation_level=None,
                                        check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                           "busy_timeout=10000"):
                self.conn.execute(f"PRAGMA {pragma}")
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def append(self, insert: BulkInsert, rows: list[tuple[Any, ...]]) -> None:
        if self.thread is None:
            self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-appends")
        await asyncio.get_running_loop().run_in_executor(self.thread, self._write,
                                                         insert.sql, rows)

    async def close(self) -> None:
        thread, self.thread = self.thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.shutdown)
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class PostgresAppends:
    def __init__(self, pool: DriverPool) -> None:
        self.pool = pool

    async def append(self, insert: BulkInsert, rows: list[tuple[Any, ...]]) -> None:
        async with (await self.pool.get()).acquire() as pg:
            await pg.execute(insert.sql, *insert.arrays(rows))

    async def close(self) -> None:
        await self.pool.close()


class EngineAppends:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append(self, insert: BulkInsert, rows: list[tuple[Any, ...]]) -> None:
        async with self.engine.connect() as conn:
            await insert.execute_committed(conn, rows)

    async def close(self) -> None:
        return None
