"""Async engine creation with the per-backend settings the gateway relies on."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from servicegate.storage.appends import Appends, EngineAppends, PostgresAppends, SqliteAppends
from servicegate.storage.driver_pool import asyncpg_connect_args
from servicegate.storage.reads import (
    EngineReads,
    Reads,
    is_sqlite_file,
    postgres_reads,
    sqlite_reads,
)
from servicegate.storage.sqlite_settings import connection_pragmas
from servicegate.storage.urls import async_url, ensure_sqlite_dir
from servicegate.storage.writer_connections import WriterConnections


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    for pragma in connection_pragmas():
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def bind_none_cheaply() -> None:
    """Bind Python None as SQL NULL without the sqlite3 module's adapter search.

    The module binds int, float and str directly but looks every other value up as an
    adapter: for None that lookup fails twice with a formatted AttributeError, about 3,000
    CPU instructions per NULL parameter (a quarter of the identity importer's writing cost;
    deliveries and jobs bind several NULLs per row too). A registered adapter is found at
    once; `{}.get` is a C function that returns None for None, so the value bound is still
    NULL. Process-wide and idempotent, as `sqlite3.register_adapter` is."""
    sqlite3.register_adapter(type(None), {}.get)


def json_text(value: Any) -> str:
    """A JSON column's value as its type sends it to the driver. JSON columns are encoded with
    orjson (several times faster than the stdlib encoder on the hot paths that store
    documents: job submissions, events)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_loads(value: Any) -> Any:
    # SQLite's NUMERIC affinity hands a stored scalar document (`1`, `2.5`) back as a number.
    return value if isinstance(value, int | float) else orjson.loads(value)


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        ensure_sqlite_dir(parsed)
        bind_none_cheaply()
        engine = create_async_engine(parsed, echo=echo, json_serializer=json_text,
                                     json_deserializer=_json_loads)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        parsed,
        echo=echo,
        json_serializer=json_text,
        json_deserializer=_json_loads,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def search_reads(engine: AsyncEngine, pool_size: int) -> Reads:
    """Read-only access to the gateway's own database for searches (see storage/reads.py):
    reader threads on a SQLite file, an autocommit pool of half the size on PostgreSQL;
    both refuse writes."""
    if is_sqlite_file(engine.url):
        return sqlite_reads(engine.url, pool_size)
    if engine.dialect.name == "postgresql":
        return postgres_reads(engine.url, max(1, pool_size // 2))
    return EngineReads(engine)  # e.g. an in-memory SQLite database: only its engine sees it


def batch_appends(engine: AsyncEngine) -> Appends:
    """Group commit's writes on the raw driver (storage/appends.py): SQLite's own writer
    thread, or an asyncpg connection per concurrent writer; through the engine for an
    in-memory SQLite database (only its engine's connection sees it)."""
    if is_sqlite_file(engine.url):
        return SqliteAppends(str(engine.url.database))
    if engine.dialect.name == "postgresql":
        return PostgresAppends(WriterConnections(asyncpg_connect_args(engine.url)))
    return EngineAppends(engine)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
