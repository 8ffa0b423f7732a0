"""The PostgreSQL database benchmarks may empty: `servicegate_bench` on the test server.

    .venv/bin/python -m bench.postgres      prints its URL (created if missing), or exits 1

The server is the one `make test` uses (`SERVICEGATE_TEST_POSTGRES_URL`, default
`postgresql://postgres@127.0.0.1:5432/test`); the benchmarks truncate the tables of the database
they are given, so they get one of their own, never the database named in that URL.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from tests.support.databases import postgres_admin_url

NAME = "servicegate_bench"


async def _ensure() -> str:
    admin = postgres_admin_url()
    conn = await asyncpg.connect(admin, timeout=5)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", NAME)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await conn.close()
    return f"{admin.rsplit('/', 1)[0]}/{NAME}"


def main() -> None:
    try:
        print(asyncio.run(_ensure()))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"PostgreSQL not reachable at {postgres_admin_url()}: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
