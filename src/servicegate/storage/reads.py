"""Read-only database access for searches: each read is one plain (synchronous) function of a
SQLAlchemy Connection, run with the fewest thread hops and round trips the backend allows.

- SQLite (`ThreadedReads`): the whole function runs in one call on a small pool of reader
  threads, each with its own sqlite3 connection to the same file. Through aiosqlite, every
  cursor step (open, execute, fetch, close, reset) is a separate hop to its thread and back:
  about nine per search, 1.2 ms of a 1.3 ms identity lookup whose SQL takes 0.06 ms.
- PostgreSQL (`EngineReads` on `read_engine`'s own pool): autocommit sessions. The gateway's
  main pool pings each connection on checkout, and the asyncpg dialect wraps that ping in
  BEGIN/ROLLBACK for any connection not in autocommit, then opens a transaction for the
  reads and rolls it back: seven round trips for a two-statement search. In autocommit the
  ping is one round trip and the statements run as they are; under READ COMMITTED each
  statement takes its own snapshot either way, so nothing is lost by it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

T = TypeVar("T")
Read = Callable[[Connection], T]
MAX_READER_THREADS = 4


class Reads(Protocol):
    dialect: str

    async def run(self, read: Read[T]) -> T: ...

    async def close(self) -> None: ...


class EngineReads:
    """Reads through an async engine: the function runs under `AsyncConnection.run_sync`."""

    def __init__(self, engine: AsyncEngine, *, owned: bool = False) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.owned = owned

    async def run(self, read: Read[T]) -> T:
        async with self.engine.connect() as conn:
            return await conn.run_sync(read)

    async def close(self) -> None:
        if self.owned:
            await self.engine.dispose()


class ThreadedReads:
    """Reads on a SQLite file from a few dedicated threads, one hop per read."""

    dialect = "sqlite"

    def __init__(self, engine: Engine, threads: int) -> None:
        self.engine = engine
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-reads")

    def _call(self, read: Read[T]) -> T:
        with self.engine.connect() as conn:
            return read(conn)

    async def run(self, read: Read[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._call, read)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.engine.dispose()


def is_sqlite_file(url: URL) -> bool:
    return (url.get_backend_name() == "sqlite" and bool(url.database)
            and url.database != ":memory:" and url.query.get("mode") != "memory")


def threaded_sqlite(url: URL, threads: int, on_connect: Callable[[Any, Any], None],
                    **engine_args: Any) -> ThreadedReads:
    """Reader threads on the SQLite file of `url`; `on_connect` sets each new connection up
    (pragmas), `engine_args` go to the engine (JSON codecs)."""
    engine = create_sync_engine(url.set(drivername="sqlite"), pool_size=threads,
                                max_overflow=0, **engine_args)
    event.listen(engine, "connect", on_connect)
    return ThreadedReads(engine, threads)


def autocommit_engine(url: URL, pool_size: int, **engine_args: Any) -> EngineReads:
    """A pool of its own whose sessions run each statement in autocommit (PostgreSQL)."""
    return EngineReads(create_async_engine(
        url, isolation_level="AUTOCOMMIT", pool_size=pool_size, max_overflow=pool_size,
        pool_pre_ping=True, pool_recycle=1800, **engine_args), owned=True)
