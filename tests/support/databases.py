"""Test databases: a fresh SQLite file per test, a fresh PostgreSQL database per test run."""

from __future__ import annotations

import asyncio
import os
import secrets

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
LOCK_TIMEOUT = "60s"
IDLE_IN_TRANSACTION_TIMEOUT = "120s"


def postgres_admin_url() -> str:
    return os.environ.get("SERVICEGATE_TEST_POSTGRES_URL", DEFAULT_PG)


def postgres_required() -> bool:
    return os.environ.get("SERVICEGATE_TEST_REQUIRE_POSTGRES") == "1" or os.environ.get("CI") == "true"


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(postgres_admin_url(), timeout=5)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def create_postgres_database() -> str:
    """Create a database for this test run and return its URL (skip or fail if unreachable)."""
    name = f"sg_test_{secrets.token_hex(6)}"
    try:
        # A test that waits on a lock, or leaves a transaction open, fails with the statement
        # that waited instead of hanging the run until CI's own limit.
        asyncio.run(_admin(
            f'CREATE DATABASE "{name}"',
            f"ALTER DATABASE \"{name}\" SET lock_timeout = '{LOCK_TIMEOUT}'",
            f"ALTER DATABASE \"{name}\" SET idle_in_transaction_session_timeout "
            f"= '{IDLE_IN_TRANSACTION_TIMEOUT}'"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if postgres_required():
            raise RuntimeError(f"PostgreSQL is required here but unreachable: {exc}") from exc
        pytest.skip(f"PostgreSQL not reachable at {postgres_admin_url()}: {exc}")
    base = postgres_admin_url().rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table (but alembic's) between tests sharing one PostgreSQL database."""
    async with engine.begin() as conn:
        rows = await conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename <> 'alembic_version'"
            )
        )
        names = [r[0] for r in rows]
        if names:
            await conn.execute(
                text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE")
            )


async def end_pooled_connection(engine: AsyncEngine) -> int:
    """Have the PostgreSQL server end the connection the engine's pool holds (an engine with
    one pooled connection: `pool_size=1`), as a restart or an operator would; its backend pid."""
    async with engine.connect() as conn:
        pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
    admin = await asyncpg.connect(postgres_admin_url(), timeout=5)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    return int(pid)
