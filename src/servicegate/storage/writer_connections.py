"""asyncpg connections for a fixed number of concurrent writers (group commit's: job intake).

Group commit never runs more than its `writers` writes at once, so its connections need no pool:
no waiting, no timeouts, no fairness. A free list does: take the last connection given back, or
open one; give it back after the write. asyncpg's pool costs 50 µs of the event loop's time per
acquire and release on this machine (a shielded task per release, a timer re-armed on each), as
much as the write itself; a free list, nothing measurable.

- A connection the server closed is noticed (asyncpg marks it closed) and never handed out.
- A write interrupted (cancelled, or any error that leaves the connection closed) does not give
  its connection back: its state is unknown.
- Connections idle for `IDLE_SECONDS` are closed (one timer for all, not one per release).
- `close()` closes the idle ones at once, those in use when they come back; the next use opens
  new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

IDLE_SECONDS = 300.0


class WriterConnections:
    def __init__(self, connect_args: dict[str, Any], idle_seconds: float = IDLE_SECONDS) -> None:
        self.connect_args = connect_args
        self.idle_seconds = idle_seconds
        # (conn, idle since): always of the current generation (`close()` empties the list)
        self.idle: list[tuple[asyncpg.Connection, float]] = []
        self.generation = 0
        self._reaper: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Future[None]] = set()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        conn, generation = await self._take()
        try:
            yield conn
        except BaseException as exc:
            # An error the server reported leaves the connection ready for the next statement;
            # anything else (a cancelled write, a lost connection) leaves it in an unknown state.
            if not isinstance(exc, asyncpg.PostgresError):
                conn.terminate()
            self._give_back(conn, generation)
            raise
        self._give_back(conn, generation)

    async def _take(self) -> tuple[asyncpg.Connection, int]:
        generation = self.generation
        while self.idle:
            conn, _ = self.idle.pop()
            if not conn.is_closed():
                return conn, generation
        return await asyncpg.connect(**self.connect_args), generation

    def _give_back(self, conn: asyncpg.Connection, generation: int) -> None:
        if conn.is_closed():
            return
        if generation != self.generation:  # closed while it was in use
            self._close_soon(conn)
            return
        self.idle.append((conn, time.monotonic()))
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().call_later(self.idle_seconds, self._reap)

    def _reap(self) -> None:
        self._reaper = None
        cutoff = time.monotonic() - self.idle_seconds
        # the oldest idle connections are at the bottom of the stack
        while self.idle and self.idle[0][1] <= cutoff:
            self._close_soon(self.idle.pop(0)[0])
        if self.idle:
            self._reaper = asyncio.get_running_loop().call_later(
                self.idle[0][1] + self.idle_seconds - time.monotonic(), self._reap)

    def _close_soon(self, conn: asyncpg.Connection) -> None:
        closing = asyncio.ensure_future(_close(conn))
        self._closing.add(closing)  # (a task nobody holds may be collected mid-way)
        closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        self.generation += 1
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        idle, self.idle = self.idle, []
        for conn, _ in idle:
            await _close(conn)


async def _close(conn: asyncpg.Connection) -> None:
    """Politely (the server sees a Terminate message), or at once if that does not work."""
    try:
        await asyncio.wait_for(conn.close(), 10)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()

