"""Async engines: the one way to a database, with the per-backend settings the gateway relies on."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from servicegate.storage.urls import async_url, ensure_sqlite_dir, private_sqlite_files

# how long a SQLite connection waits for another one's write lock before it fails (SQLITE_BUSY)
BUSY_TIMEOUT_MS = 10_000
# The gateway's own SQLite file: the write-ahead log (readers never block the writer), fsync at
# checkpoints only (a commit survives a process crash; a power loss may lose the last ones),
# foreign keys enforced.
_GATEWAY_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                    f"busy_timeout={BUSY_TIMEOUT_MS}")
# Another application's SQLite file, read in place: no write of any kind, its settings untouched.
_READ_ONLY_PRAGMAS = ("query_only=ON", f"busy_timeout={BUSY_TIMEOUT_MS}")


def json_text(value: Any) -> str:
    """A JSON column's value as its type sends it to the driver: orjson, SQLAlchemy's
    `json_serializer` hook (faster than the standard library's encoder on the paths that store
    whole documents: job submissions, events)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_loads(value: Any) -> Any:
    # SQLite's NUMERIC affinity hands a stored scalar document (`1`, `2.5`) back as a number.
    return value if isinstance(value, int | float) else orjson.loads(value)


def _run_pragmas(engine: AsyncEngine, pragmas: tuple[str, ...]) -> None:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    event.listen(engine.sync_engine, "connect", on_connect)


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False,
                  private: bool = True) -> AsyncEngine:
    """An engine with the gateway's settings. `private` (the gateway's own database): a SQLite
    file is its owner's only (0600, with its `-wal` and `-shm`); a named database of a `sql`
    action is another application's file, whose modes are left alone."""
    parsed = async_url(url)
    json_hooks: dict[str, Any] = {"json_serializer": json_text, "json_deserializer": _json_loads}
    if parsed.get_backend_name() == "sqlite":
        ensure_sqlite_dir(parsed)
        if private:
            private_sqlite_files(parsed)
        engine = create_async_engine(parsed, echo=echo, **json_hooks)
        _run_pragmas(engine, _GATEWAY_PRAGMAS)
        return engine
    return create_async_engine(
        parsed,
        echo=echo,
        **json_hooks,
        pool_size=pool_size,
        max_overflow=pool_size,
        # a connection the server ended (a restart, an idle timeout) is replaced at checkout
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def create_read_only_engine(url: str, *, pool_size: int) -> AsyncEngine:
    """An engine for another application's database, refusing writes: SQLite connections
    `query_only`, PostgreSQL sessions `default_transaction_read_only`; at most `pool_size`
    connections."""
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(parsed)
        _run_pragmas(engine, _READ_ONLY_PRAGMAS)
        return engine
    return create_async_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"server_settings": {"default_transaction_read_only": "on"}},
    )


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
