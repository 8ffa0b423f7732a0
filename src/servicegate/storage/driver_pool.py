"""An asyncpg pool of its own for hot paths that run single statements on the driver directly
(search reads, job intake): opened on first use, closed idle connections after 5 minutes,
usable again after `close()`.

Released connections are not reset: their users only ever run single autocommit statements
(no transaction, cursor, LISTEN or SET is left behind), so asyncpg's reset query would be one
more round trip per use for nothing. A connection the server closed is noticed by the pool
and replaced before it is handed out.
"""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.engine import URL


def asyncpg_dsn(url: URL) -> str:
    """The libpq-style DSN asyncpg takes, from a SQLAlchemy URL (password kept)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _nothing_to_reset(_conn: asyncpg.Connection) -> None:
    return None


class DriverPool:
    def __init__(self, dsn: str, size: int, server_settings: dict[str, str] | None = None
                 ) -> None:
        self.dsn = dsn
        self.size = size
        self.server_settings = server_settings or {}
        self.pool: asyncpg.Pool | None = None
        self.opening = asyncio.Lock()

    async def get(self) -> asyncpg.Pool:
        if self.pool is None:
            async with self.opening:
                if self.pool is None:
                    self.pool = await asyncpg.create_pool(
                        self.dsn, min_size=0, max_size=self.size,
                        max_inactive_connection_lifetime=300, reset=_nothing_to_reset,
                        server_settings=self.server_settings)
        return self.pool

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except TimeoutError:
                pool.terminate()
