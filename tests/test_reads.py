"""Search reads (storage/reads.py) and the per-shape compiled statements they run
(storage/compiled.py), on a real SQLite file and the real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import sqlite3

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import make_url

from servicegate.storage.appends import PostgresAppends
from servicegate.storage.compiled import CompiledStatements
from servicegate.storage.driver_pool import asyncpg_connect_args
from servicegate.storage.engine import batch_appends, create_engine, search_reads
from servicegate.storage.reads import PostgresReads, SqliteReads, total_from_page

people = Table("reads_people", MetaData(), Column("id", Integer, primary_key=True),
               Column("name", String), Column("born", Date))
ROWS = [{"id": i, "name": f"n{i % 7}", "born": dt.date(1970 + i % 30, 1 + i % 12, 1)}
        for i in range(60)]


def _by_sqlalchemy(stmt, dialect):
    """What SQLAlchemy itself renders for this very statement (no cache involved)."""
    c = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = c.construct_params()
    return str(c), tuple(values[n] for n in c.positiontup or ())


def _query(name: str, born_after: dt.date, names: list[str], top: int, skip: int):
    stmt = select(people.c.id).where(people.c.name != name, people.c.born > born_after)
    if names:
        stmt = stmt.where(people.c.name.in_(names))
    return stmt.order_by(people.c.id).limit(top).offset(skip)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=5), st.dates(), st.lists(st.text(max_size=3),
                                                                      max_size=4),
                          st.integers(0, 100), st.integers(0, 1000)), min_size=1, max_size=6))
def test_cached_shapes_give_what_sqlalchemy_renders(calls):
    """Many statements through one cache: each gets its own values, never a previous one's,
    and the same SQL SQLAlchemy renders (dates bound as SQLite stores them)."""
    for dialect in (pysqlite.dialect(paramstyle="qmark"), postgresql.asyncpg.dialect()):
        cache = CompiledStatements(dialect)
        for args in calls:
            sql, params = cache(_query(*args))
            expected_sql, expected = _by_sqlalchemy(_query(*args), dialect)
            assert params == tuple(
                v.isoformat() if isinstance(v, dt.date) and dialect.name == "sqlite" else v
                for v in expected)
            if not args[2]:  # without an IN list the SQL is the same text
                assert sql == expected_sql


def test_one_shape_is_compiled_once_and_the_oldest_is_dropped():
    cache = CompiledStatements(pysqlite.dialect(paramstyle="qmark"), size=2)
    first = cache(select(people.c.id).where(people.c.name == "a"))
    second = cache(select(people.c.id).where(people.c.name == "b"))
    assert first[0] == second[0] and (first[1], second[1]) == (("a",), ("b",))
    assert len(cache.shapes) == 1
    cache(select(people.c.id).where(people.c.id == 1))
    cache(select(people.c.name).where(people.c.id == 1))
    assert len(cache.shapes) == 2  # the first shape was the least recently used
    in_lists = [cache(select(people.c.id).where(people.c.id.in_(ids)))
                for ids in ([1], [1, 2], [3])]
    assert [p for _, p in in_lists] == [(1,), (1, 2), (3,)]
    assert in_lists[0][0] != in_lists[1][0]


@pytest.fixture
async def reads(engine):
    async with engine.begin() as conn:
        await conn.run_sync(people.metadata.drop_all)
        await conn.run_sync(people.metadata.create_all)
        await conn.execute(insert(people), ROWS)
    r = search_reads(engine, 4)
    try:
        yield r
    finally:
        await r.close()
        async with engine.begin() as conn:
            await conn.run_sync(people.metadata.drop_all)


@pytest.mark.parametrize(("found", "skip", "top", "total"), [
    (3, 0, 5, 3), (3, 10, 5, 13),      # a short page ends the results
    (0, 0, 5, 0),                      # nothing matches
    (5, 0, 5, None), (5, 7, 5, None),  # a full page: more may follow
    (0, 7, 5, None),                   # empty past the start: how far short?
    (0, 0, 0, None), (0, 3, 0, None),  # no page asked for
])
def test_total_from_page(found, skip, top, total):
    assert total_from_page(found, skip, top) == total


async def test_page_and_total_counts_only_when_the_page_cannot_tell(reads):
    """9 rows match: every skip/top around the edges gives the true total and page."""
    where = people.c.name == "n3"
    ids = [3, 10, 17, 24, 31, 38, 45, 52, 59]
    count = select(func.count()).select_from(people).where(where)
    for skip in (0, 1, 8, 9, 12):
        for top in (0, 1, 3, 9, 10):
            page = select(people.c.id).where(where).order_by(people.c.id).limit(top) \
                .offset(skip)
            total, rows = await reads.page_and_total(page, count, skip, top)
            assert total == 9 and [r[0] for r in rows] == ids[skip:skip + top], (skip, top)
    born = await reads.rows(select(people.c.id).where(people.c.born == dt.date(1975, 6, 1)))
    assert [r[0] for r in born] == [5]


async def test_reads_see_later_commits_and_cannot_write(engine, reads):
    count = select(func.count()).select_from(people)
    assert (await reads.page_and_total(count, count, 0, 0))[0] == 60
    async with engine.begin() as conn:
        await conn.execute(insert(people), [{"id": 100, "name": "late", "born": None}])
    assert (await reads.page_and_total(count, count, 0, 0))[0] == 61
    with pytest.raises((sqlite3.OperationalError, asyncpg.PostgresError)):
        await reads.rows(text("DELETE FROM reads_people RETURNING id"))
    async with engine.connect() as conn:
        assert (await conn.execute(count)).scalar() == 61


async def test_sqlite_reads_close_their_connections(sqlite_url):
    engine = create_engine(sqlite_url)
    async with engine.begin() as conn:
        await conn.run_sync(people.metadata.create_all)
        await conn.execute(insert(people), ROWS)
    reads = search_reads(engine, 2)
    assert isinstance(reads, SqliteReads)
    count = select(func.count()).select_from(people)
    await reads.page_and_total(select(people.c.id), count, 0, 100)
    opened = list(reads.opened)
    assert opened and not any(c.in_transaction for c in opened)
    await reads.close()
    assert reads.opened == []
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened[0].execute("SELECT 1")
    await engine.dispose()


@pytest.mark.postgres
async def test_postgres_read_survives_a_lost_connection(postgres_url):
    """The server ends the reads' pooled connection; the next read retries on a fresh one."""
    engine = create_engine(postgres_url)
    async with engine.begin() as conn:
        await conn.run_sync(people.metadata.drop_all)
        await conn.run_sync(people.metadata.create_all)
        await conn.execute(insert(people), ROWS)
    reads = search_reads(engine, 4)
    assert isinstance(reads, PostgresReads)
    count = select(func.count()).select_from(people)
    try:
        assert (await reads.page_and_total(count, count, 0, 0))[0] == 60
        async with (await reads.pool.get()).acquire() as pg:  # the pooled connection's backend
            pid = pg.get_server_pid()
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        assert (await reads.page_and_total(count, count, 0, 0))[0] == 60
        async with (await reads.pool.get()).acquire() as pg:
            assert pg.get_server_pid() != pid
    finally:
        await reads.close()
        async with engine.begin() as conn:
            await conn.run_sync(people.metadata.drop_all)
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_read_retries_when_the_driver_took_the_lost_connection_back(postgres_url):
    """asyncpg may see a connection go before the read's own error reaches it: the pool has
    then taken the connection back already, and the retry must still run (not fail on it)."""
    engine = create_engine(postgres_url)
    reads = search_reads(engine, 1)
    assert isinstance(reads, PostgresReads)
    calls: list[int] = []

    async def use(pg):
        calls.append(pg.get_server_pid())
        if len(calls) == 1:
            pg.terminate()  # the driver cleans up and releases the pooled proxy at once
            raise asyncpg.ConnectionDoesNotExistError("connection was closed")
        return await pg.fetchval("SELECT 7")

    try:
        assert await reads._on_driver(use) == 7
        assert len(calls) == 2 and calls[0] != calls[1]
    finally:
        await reads.close()
        await engine.dispose()


def test_asyncpg_connect_args_read_the_url_as_the_main_engine_does():
    url = make_url("postgresql+asyncpg://u:p%40ss@db.internal:5433/crm"
                   "?ssl=require&prepared_statement_cache_size=0")
    assert asyncpg_connect_args(url) == {"host": "db.internal", "port": 5433, "user": "u",
                                         "password": "p@ss", "database": "crm",
                                         "ssl": "require"}


@pytest.mark.postgres
async def test_postgres_pools_take_the_urls_options(postgres_url):
    """`?ssl=...` as the main engine takes it (a DSN would send it to the server as a setting)."""
    engine = create_engine(postgres_url + ("&" if "?" in postgres_url else "?") + "ssl=disable")
    reads, appends = search_reads(engine, 2), batch_appends(engine)
    try:
        assert (await reads.page_and_total(select(literal(1)), select(literal(7)), 0, 0))[0] == 7
        assert isinstance(appends, PostgresAppends)
        assert appends.connections.connect_args["ssl"] == "disable"
        async with appends.connections.connection() as pg:
            assert await pg.fetchval("SELECT 1") == 1
    finally:
        await reads.close()
        await appends.close()
        await engine.dispose()
