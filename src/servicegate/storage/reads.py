"""Read-only database access for searches: SQLAlchemy statements, compiled once per shape
(`storage/compiled.py`), run on the raw driver with the fewest thread hops and round trips
the backend allows.

- SQLite (`SqliteReads`): a page and, when needed, its count run in one call on a small pool
  of reader threads, each with its own sqlite3 connection to the file (autocommit: every
  statement sees the latest commit). Through aiosqlite every cursor step (open, execute,
  fetch, close, reset) is a separate hop to its thread and back: about nine per search,
  1.2 ms of a 1.3 ms identity lookup whose SQL takes 0.06 ms.
- PostgreSQL (`PostgresReads`): an asyncpg pool of its own, statements in autocommit.
  Through the gateway's main pool a search was seven round trips where two suffice: the
  checkout ping, which SQLAlchemy's asyncpg dialect wraps in BEGIN/ROLLBACK for a
  connection not in autocommit, then BEGIN, the two statements and ROLLBACK. Each statement
  takes its own snapshot, as it would under READ COMMITTED inside a transaction. Instead of
  pinging, a read that finds its connection gone (a database restart) is retried once on
  a fresh one (reads change nothing, so a retry is safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import asyncpg
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement

from servicegate.storage.compiled import CompiledStatements
from servicegate.storage.driver_pool import DriverPool, asyncpg_connect_args
from servicegate.storage.sqlite_settings import BUSY_TIMEOUT_MS

MAX_READER_THREADS = 4
Rows = list[Sequence[Any]]


def total_from_page(found: int, skip: int, top: int) -> int | None:
    """The total a page of `found` rows (of at most `top`, after `skip`) shows by itself, or
    None when only a count can tell: a page that is not full ends the results, unless it is
    empty past the start (or no page was asked for). An exact lookup (`idnumber eq ...`)
    then costs one statement instead of two."""
    if top > 0 and found < top and (found > 0 or skip == 0):
        return skip + found
    return None


class Reads(Protocol):
    dialect: str

    async def page_and_total(self, page: ClauseElement, count: ClauseElement, skip: int,
                             top: int) -> tuple[int, Rows]:
        """`page`'s rows (none when `top` is 0) and the total: from the page where it shows
        it (`total_from_page`), otherwise the first column of `count`."""
        ...

    async def rows(self, stmt: ClauseElement) -> Rows: ...

    async def close(self) -> None: ...


class SqliteReads:
    dialect = "sqlite"

    def __init__(self, path: str, threads: int) -> None:
        self.path = path
        self.compiled = CompiledStatements(pysqlite.dialect(paramstyle="qmark"))
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-reads")
        self.local = threading.local()
        self.opened: list[sqlite3.Connection] = []
        self.lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")  # reads only, whatever a caller passes
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            with self.lock:
                self.opened.append(conn)
            self.local.conn = conn
        return conn

    def _page_and_total(self, page: tuple[str, tuple], count: tuple[str, tuple], skip: int,
                        top: int) -> tuple[int, Rows]:
        conn = self._connection()
        rows = conn.execute(*page).fetchall() if top > 0 else []
        total = total_from_page(len(rows), skip, top)
        return (conn.execute(*count).fetchone()[0] if total is None else total), rows

    def _rows(self, stmt: tuple[str, tuple]) -> Rows:
        return self._connection().execute(*stmt).fetchall()

    async def _hop(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def page_and_total(self, page: ClauseElement, count: ClauseElement, skip: int,
                             top: int) -> tuple[int, Rows]:
        result: tuple[int, Rows] = await self._hop(
            self._page_and_total, self.compiled(page), self.compiled(count), skip, top)
        return result

    async def rows(self, stmt: ClauseElement) -> Rows:
        result: Rows = await self._hop(self._rows, self.compiled(stmt))
        return result

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        with self.lock:
            for conn in self.opened:
                conn.close()
            self.opened.clear()


# the session is gone: the socket closed or reset, the server shutting the backend down
# (pg_terminate_backend, a restart), or the protocol left mid-message by either
_LOST = (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, ConnectionError,
         asyncpg.PostgresConnectionError, asyncpg.exceptions.AdminShutdownError,
         asyncpg.exceptions.CrashShutdownError, asyncpg.InternalClientError)


def _discard(pg: asyncpg.Connection) -> None:
    """Close a pooled connection that failed, so that the pool opens a new one in its place.
    When asyncpg saw the connection go first, it has already taken it back (the proxy is
    released and refuses every call): nothing is left to close then."""
    with contextlib.suppress(asyncpg.InterfaceError):
        pg.terminate()


class PostgresReads:
    dialect = "postgresql"

    def __init__(self, pool: DriverPool) -> None:
        self.pool = pool
        self.compiled = CompiledStatements(postgresql.asyncpg.dialect())

    async def _on_driver(self, use: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        pool = await self.pool.get()
        for attempt in (1, 2):
            async with pool.acquire() as pg:
                try:
                    return await use(pg)
                except _LOST:
                    _discard(pg)
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    async def page_and_total(self, page: ClauseElement, count: ClauseElement, skip: int,
                             top: int) -> tuple[int, Rows]:
        page_sql, page_args = self.compiled(page)
        count_sql, count_args = self.compiled(count)

        async def use(pg: asyncpg.Connection) -> tuple[int, Rows]:
            rows = await pg.fetch(page_sql, *page_args) if top > 0 else []
            total = total_from_page(len(rows), skip, top)
            return (await pg.fetchval(count_sql, *count_args) if total is None else total), rows

        result: tuple[int, Rows] = await self._on_driver(use)
        return result

    async def rows(self, stmt: ClauseElement) -> Rows:
        sql, args = self.compiled(stmt)
        result: Rows = await self._on_driver(lambda pg: pg.fetch(sql, *args))
        return result

    async def close(self) -> None:
        await self.pool.close()


class EngineReads:
    """Through an async engine's own execution, for what the two above do not cover (an
    in-memory SQLite database, seen only by its own engine's connection)."""

    def __init__(self, engine: AsyncEngine, *, owned: bool = False) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.owned = owned
        self.compiled = CompiledStatements(engine.dialect)

    async def page_and_total(self, page: ClauseElement, count: ClauseElement, skip: int,
                             top: int) -> tuple[int, Rows]:
        async with self.engine.connect() as conn:
            rows = list((await conn.exec_driver_sql(*self.compiled(page))).all()) \
                if top > 0 else []
            total = total_from_page(len(rows), skip, top)
            if total is None:
                total = (await conn.exec_driver_sql(*self.compiled(count))).scalar_one()
            return total, rows

    async def rows(self, stmt: ClauseElement) -> Rows:
        async with self.engine.connect() as conn:
            return list((await conn.exec_driver_sql(*self.compiled(stmt))).all())

    async def close(self) -> None:
        if self.owned:
            await self.engine.dispose()


def is_sqlite_file(url: URL) -> bool:
    """A plain file path (URL options such as `mode=memory` or `uri=true` are left to
    SQLAlchemy's own handling)."""
    return (url.get_backend_name() == "sqlite" and bool(url.database)
            and url.database != ":memory:" and not url.query)


def postgres_reads(url: URL, pool_size: int) -> PostgresReads:
    """A pool of its own of up to `pool_size` asyncpg connections, opened on first use and
    closed after 5 idle minutes; sessions `default_transaction_read_only`."""
    return PostgresReads(DriverPool(asyncpg_connect_args(url), pool_size,
                                    {"default_transaction_read_only": "on"}))


def sqlite_reads(url: URL, pool_size: int) -> SqliteReads:
    return SqliteReads(str(url.database), min(pool_size, MAX_READER_THREADS))
