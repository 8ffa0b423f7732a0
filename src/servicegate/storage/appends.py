"""Batches of new rows committed on their own (group commit's writes: job intake), on the raw
driver, without a pool checkout per batch.

Under load a group-commit writer usually finds nothing waiting after its write and gives its
session back, so each batch paid a checkout: on PostgreSQL the main pool's ping, which
SQLAlchemy's asyncpg dialect wraps in BEGIN/ROLLBACK (three round trips before the insert);
on SQLite four hops to aiosqlite's thread (checkout, executemany, commit, reset).

- SQLite (`SqliteAppends`): a batch is `BEGIN IMMEDIATE`, the executemany and COMMIT on a
  connection of its own, written on the event loop itself when it can be: a handoff to a
  thread and back costs more than a small batch's write (issue 6: async 202s 36-40 % ->
  47-51 % of the sync rate in one server, bench/RESULTS.md). The loop never waits for a
  lock: its connection has no busy timeout, and a batch that finds the file locked (by
  another connection, process or a job worker's transaction) goes to the writer thread
  instead, which waits as long as SQLite's busy timeout lets it. So do large batches
  (`INLINE_MAX_ROWS`: the loop would stall for milliseconds). The loop's connection never
  checkpoints the write-ahead log (a checkpoint copies pages for tens of milliseconds):
  every `CHECKPOINT_ROWS` rows the thread runs a PASSIVE checkpoint while the loop goes on
  writing, then the next batch (at the latest after as many rows again) goes to the thread
  and its commit checkpoints what was written meanwhile (little), so that the log starts
  again from its beginning. The log stays bounded: tens of MB under a sustained load, where
  SQLite's own checkpoints (every 1000 pages) copy the same hot pages again and again.
- PostgreSQL (`PostgresAppends`): an asyncpg connection per writer, kept in a free list
  (`storage/writer_connections.py`: group commit bounds the writers, no pool needed); a
  batch is one statement (`BulkInsert`'s PostgreSQL form), atomic on its own, one round
  trip. A connection lost during a write fails that batch (its callers
  get the error: a write is never retried blindly, as it may have committed).

Both are opened on first use and may be used again after `close()`. `EngineAppends` is the
fallback through an engine connection (an in-memory SQLite database, seen only by its engine).
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.storage.bulk_insert import BulkInsert, Rows
from servicegate.storage.sqlite_settings import BUSY_TIMEOUT_MS, connection_pragmas
from servicegate.storage.writer_connections import WriterConnections


class Appends(Protocol):
    async def append(self, insert: BulkInsert, rows: Rows, shared: tuple[Any, ...] = ()) -> None:
        """Insert `rows` (tuples of `insert.columns`, in the driver's form) with the values of
        `insert.shared` and commit."""
        ...

    async def close(self) -> None: ...


log = structlog.get_logger("servicegate.storage")

INLINE_MAX_ROWS = 128
CHECKPOINT_ROWS = 10_000


class SqliteAppends:
    def __init__(self, path: str, *, inline_max_rows: int = INLINE_MAX_ROWS,
                 checkpoint_rows: int = CHECKPOINT_ROWS) -> None:
        self.path = path
        self.inline_max_rows = inline_max_rows
        self.checkpoint_rows = checkpoint_rows
        self.thread: ThreadPoolExecutor | None = None
        self.conn: sqlite3.Connection | None = None  # used only on `thread`
        self.loop_conn: sqlite3.Connection | None = None  # used only on the event loop
        self.rows_since_checkpoint = 0
        self.copying: Future[None] | None = None  # the thread's background checkpoint

    def _connect(self, *, wait: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        pragmas = connection_pragmas(busy_timeout_ms=BUSY_TIMEOUT_MS if wait else 0)
        if not wait:
            pragmas.append("wal_autocheckpoint=0")
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        return conn

    @staticmethod
    def _insert(conn: sqlite3.Connection, sql: str, rows: Rows) -> None:
        """The batch in a transaction of its own; BEGIN IMMEDIATE has been run."""
        try:
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _write_on_loop(self, sql: str, rows: Rows) -> bool:
        """Write on the calling (event loop) thread; False, with nothing written, when the
        file's write lock is held elsewhere."""
        if self.loop_conn is None:
            self.loop_conn = self._connect(wait=False)
        conn = self.loop_conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY:
                return False
            raise
        self._insert(conn, sql, rows)
        self.rows_since_checkpoint += len(rows)
        return True

    def _thread_conn(self) -> sqlite3.Connection:
        if self.conn is None:
            self.conn = self._connect(wait=True)
        return self.conn

    def _checkpoint(self) -> None:
        """On the thread. PASSIVE: never waits for a reader or the writer; copies what no
        reader needs any more. Best effort: logged, never raised (after a batch's commit its
        callers must not see an error: their rows are stored)."""
        try:
            # fetched to its end: a statement left with a row pending keeps a read
            # transaction (and its hold on the log) open, and the log could never restart
            self._thread_conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("wal_checkpoint_failed", path=self.path, error=str(exc))

    def _write(self, sql: str, rows: Rows, checkpoint: bool) -> None:
        conn = self._thread_conn()
        conn.execute("BEGIN IMMEDIATE")
        self._insert(conn, sql, rows)
        if checkpoint:
            self._checkpoint()

    def _executor(self) -> ThreadPoolExecutor:
        if self.thread is None:
            self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-appends")
        return self.thread

    async def append(self, insert: BulkInsert, rows: Rows, shared: tuple[Any, ...] = ()) -> None:
        rows = insert.rows(rows, shared)
        finish = False
        if self.rows_since_checkpoint >= self.checkpoint_rows:
            if self.copying is None:
                self.copying = self._executor().submit(self._checkpoint)
            # once copied, or if copying takes too long (the thread runs it first anyway)
            finish = (self.copying.done()
                      or self.rows_since_checkpoint >= 2 * self.checkpoint_rows)
        if (not finish and len(rows) <= self.inline_max_rows
                and self._write_on_loop(insert.sql, rows)):
            return
        await asyncio.get_running_loop().run_in_executor(self._executor(), self._write,
                                                         insert.sql, rows, finish)
        if finish:
            self.copying = None
            self.rows_since_checkpoint = 0

    async def close(self) -> None:
        thread, self.thread = self.thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.shutdown)
        self.copying = None
        for conn in (self.conn, self.loop_conn):
            if conn is not None:
                conn.close()
        self.conn = self.loop_conn = None


class PostgresAppends:
    def __init__(self, connections: WriterConnections) -> None:
        self.connections = connections

    async def append(self, insert: BulkInsert, rows: Rows, shared: tuple[Any, ...] = ()) -> None:
        async with self.connections.connection() as pg:
            await pg.execute(insert.sql, *insert.parameters(rows, shared))

    async def close(self) -> None:
        await self.connections.close()


class EngineAppends:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append(self, insert: BulkInsert, rows: Rows, shared: tuple[Any, ...] = ()) -> None:
        async with self.engine.connect() as conn:
            await insert.execute_committed(conn, rows, shared)

    async def close(self) -> None:
        return None
