"""An asyncpg pool of its own for hot paths that run single statements on the driver directly
(search reads): opened on first use, closed idle connections after 5 minutes, usable again
after `close()`. (Job intake, whose writers group commit bounds, keeps its connections in a
free list instead: `storage/writer_connections.py`.)

Released connections are not reset: their users only ever run single autocommit statements
(no transaction, cursor, LISTEN or SET is left behind), so asyncpg's reset query would be one
more round trip per use for nothing. A connection the server closed is noticed by the pool
and replaced before it is handed out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.engine import URL

# URL options SQLAlchemy's asyncpg dialect takes for itself, not for `asyncpg.connect`
_DIALECT_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func",
                 "async_fallback")


def asyncpg_connect_args(url: URL) -> dict[str, Any]:
    """`asyncpg.connect` keywords for a database URL, read as the gateway's main engine reads
    it (SQLAlchemy's asyncpg dialect): `?ssl=require`, a socket `host`, the port... The
    same URL as a DSN would differ: asyncpg sends query options it does not know (such as
    `ssl`) to the server as settings."""
    _, kwargs = asyncpg_dialect.dialect().create_connect_args(url)
    for name in _DIALECT_ONLY:
        kwargs.pop(name, None)
    return kwargs


async def _nothing_to_reset(_conn: asyncpg.Connection) -> None:
    return None


class DriverPool:
    def __init__(self, connect_args: dict[str, Any], size: int,
                 server_settings: dict[str, str] | None = None) -> None:
        self.connect_args = connect_args
        self.size = size
        self.server_settings = {**connect_args.get("server_settings", {}),
                                **(server_settings or {})}
        self.pool: asyncpg.Pool | None = None
        self.opening = asyncio.Lock()

    async def get(self) -> asyncpg.Pool:
        if self.pool is None:
            async with self.opening:
                if self.pool is None:
                    args = {**self.connect_args, "server_settings": self.server_settings}
                    self.pool = await asyncpg.create_pool(
                        min_size=0, max_size=self.size, max_inactive_connection_lifetime=300,
                        reset=_nothing_to_reset, **args)
        return self.pool

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except TimeoutError:
                pool.terminate()
