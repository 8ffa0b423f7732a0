"""Rows sent as tuples (`LeaseQueue.enqueue_rows`, job intake) are stored as the Core insert of
`enqueue` stores them, inside the caller's transaction, on both backends."""

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, func, select, text

from servicegate.clock import as_utc, utcnow
from servicegate.queue import PENDING, LeaseQueue, queue_columns
from servicegate.storage.appends import EngineAppends, PostgresAppends, SqliteAppends
from servicegate.storage.bulk_insert import BulkInsert
from servicegate.storage.engine import batch_appends, create_engine, json_text

meta = MetaData()
items = Table("test_bulk_items", meta, Column("id", String(20), primary_key=True),
              Column("doc", JSON, nullable=False), Column("made_at", DateTime(timezone=True)),
              *queue_columns())
DOC = {"a": [1, 2.5, None, "é"], "b": {"c": True}}


@pytest.fixture
async def queue(engine):
    async with engine.begin() as conn:
        await conn.run_sync(meta.drop_all)
        await conn.run_sync(meta.create_all)
    yield LeaseQueue(engine, items)
    async with engine.begin() as conn:
        await conn.run_sync(meta.drop_all)


async def rows(queue):
    async with queue.engine.connect() as conn:
        return {r.id: r for r in (await conn.execute(select(items))).all()}


async def test_tuples_are_stored_as_the_core_insert_stores_them(queue):
    now = utcnow()
    insert = queue.inserter(("id", "doc", "made_at"))
    made = insert.bind("made_at", now)
    async with queue.engine.begin() as conn:
        await queue.enqueue(conn, [{"id": f"core{i}", "doc": DOC, "made_at": now}
                                   for i in range(2)], run_at=now)
        await queue.enqueue_rows(conn, insert, [(f"bulk{i}", json_text(DOC), made)
                                                for i in range(2)], run_at=now)
    stored = await rows(queue)
    assert sorted(stored) == ["bulk0", "bulk1", "core0", "core1"]
    for row in stored.values():
        assert row.doc == DOC and as_utc(row.made_at) == now and as_utc(row.run_at) == now
        assert (row.status, row.lease_token, row.attempts) == (PENDING, None, 0)
    # due-time comparisons see both kinds alike (SQLite compares the stored text)
    assert (await queue.claim(10, lease=30, now=now - timedelta(microseconds=1))).rows == []
    claimed = await queue.claim(10, lease=30, now=now)
    assert sorted(r.id for r in claimed.rows) == ["bulk0", "bulk1", "core0", "core1"]


async def test_values_shared_by_a_batch_are_stored_in_each_of_its_rows(queue):
    now = utcnow()
    insert = queue.inserter(("id", "doc"), shared=("made_at",))
    made = insert.bind("made_at", now)
    appends = batch_appends(queue.engine)
    try:
        await queue.enqueue_appended(appends, insert, [(f"a{i}", json_text(DOC))
                                                       for i in range(3)], run_at=now,
                                     shared=(made,))
        async with queue.engine.begin() as conn:
            await queue.enqueue_rows(conn, insert, [("b", json_text(DOC))], run_at=now,
                                     shared=(None,))
    finally:
        await appends.close()
    stored = await rows(queue)
    assert sorted(stored) == ["a0", "a1", "a2", "b"]
    for name, row in stored.items():
        assert row.doc == DOC and as_utc(row.run_at) == now
        assert (row.status, row.lease_token, row.attempts) == (PENDING, None, 0)
        assert (row.made_at is None) if name == "b" else as_utc(row.made_at) == now
    with pytest.raises(ValueError, match="5 shared values expected, got 1"):  # the queue's 4
        insert.rows([("c", json_text(DOC))], (made,))


async def test_a_rolled_back_transaction_stores_none_of_them(queue):
    insert = queue.inserter(("id", "doc", "made_at"))
    with pytest.raises(RuntimeError):
        async with queue.engine.begin() as conn:
            await queue.enqueue_rows(conn, insert, [("gone", json_text(DOC), None)],
                                     run_at=utcnow())
            raise RuntimeError("the caller fails after the insert")
    assert await rows(queue) == {}
    async with queue.engine.begin() as conn:  # the connection is usable again
        await queue.enqueue_rows(conn, insert, [("kept", json_text(DOC), None)],
                                 run_at=utcnow())
    assert list(await rows(queue)) == ["kept"]


def test_unknown_columns_are_refused(engine):
    with pytest.raises(ValueError, match="no column nope"):
        BulkInsert(engine.dialect, items, ("id", "nope"))


async def test_a_committed_insert_is_all_or_nothing_on_its_own_connection(queue):
    """`execute_committed` (the engine fallback of storage/appends.py)."""
    insert = queue.inserter(("id", "doc", "made_at"))
    appends = EngineAppends(queue.engine)
    now = utcnow()
    with pytest.raises((sqlite3.IntegrityError, UniqueViolationError)):  # the driver's own
        await queue.enqueue_appended(appends, insert, [("same", json_text(DOC), None),
                                                       ("same", json_text(DOC), None)],
                                     run_at=now)
    assert await rows(queue) == {}
    await queue.enqueue_appended(appends, insert, [("a", json_text(DOC), None)], run_at=now)
    assert list(await rows(queue)) == ["a"]  # committed: visible to other connections
    await queue.enqueue_appended(appends, insert, [("b", json_text(DOC), None)], run_at=now)
    assert sorted(await rows(queue)) == ["a", "b"]
    async with queue.engine.begin() as conn:
        with pytest.raises(RuntimeError, match="without a transaction"):
            await insert.execute_committed(conn, [("c", json_text(DOC), None)],
                                           (PENDING, None, None, 0))


async def test_driver_appends_commit_batches_all_or_nothing(queue):
    """The group-commit writer of job intake (storage/appends.py), on its own connection."""
    appends = batch_appends(queue.engine)
    insert = queue.inserter(("id", "doc", "made_at"))
    now = utcnow()
    made = insert.bind("made_at", now)
    try:
        await queue.enqueue_appended(appends, insert, [(f"a{i}", json_text(DOC), made)
                                                       for i in range(3)], run_at=now)
        stored = await rows(queue)  # committed: seen from the engine's own connections
        assert sorted(stored) == ["a0", "a1", "a2"]
        for row in stored.values():
            assert row.doc == DOC and as_utc(row.made_at) == now and as_utc(row.run_at) == now
            assert (row.status, row.lease_token, row.attempts) == (PENDING, None, 0)
        with pytest.raises((sqlite3.IntegrityError, UniqueViolationError)):
            await queue.enqueue_appended(appends, insert, [("b", json_text(DOC), None),
                                                           ("a1", json_text(DOC), None)],
                                         run_at=now)
        assert sorted(await rows(queue)) == ["a0", "a1", "a2"]  # "b" went with the batch
        await appends.close()  # reopened on the next use
        await queue.enqueue_appended(appends, insert, [("c", json_text(DOC), None)],
                                     run_at=now)
        assert sorted(await rows(queue)) == ["a0", "a1", "a2", "c"]
    finally:
        await appends.close()


@pytest.mark.postgres
async def test_postgres_appends_survive_a_connection_the_server_ended(postgres_url):
    engine = create_engine(postgres_url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.drop_all)
        await conn.run_sync(meta.create_all)
    queue = LeaseQueue(engine, items)
    appends = batch_appends(engine)
    assert isinstance(appends, PostgresAppends)
    insert = queue.inserter(("id", "doc", "made_at"))
    try:
        await queue.enqueue_appended(appends, insert, [("x", json_text(DOC), None)],
                                     run_at=utcnow())
        async with appends.connections.connection() as pg:
            pid = pg.get_server_pid()
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        await asyncio.sleep(0.05)  # the idle connection sees the server close it
        await queue.enqueue_appended(appends, insert, [("y", json_text(DOC), None)],
                                     run_at=utcnow())
        assert sorted(await rows(queue)) == ["x", "y"]
    finally:
        await appends.close()
        async with engine.begin() as conn:
            await conn.run_sync(meta.drop_all)
        await engine.dispose()


@pytest.fixture
async def sqlite_queue(sqlite_url):
    """(the queue, its SQLite file's path, the inserter of the tests' rows)"""
    engine = create_engine(sqlite_url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    queue = LeaseQueue(engine, items)
    yield queue, str(engine.url.database), queue.inserter(("id", "doc", "made_at"))
    await engine.dispose()


async def test_sqlite_appends_write_on_the_loop_and_never_wait_there_for_a_lock(sqlite_queue):
    queue, path, insert = sqlite_queue
    appends = SqliteAppends(path, inline_max_rows=5)
    now = utcnow()
    try:
        await queue.enqueue_appended(appends, insert, [("a", json_text(DOC), None)], run_at=now)
        assert appends.thread is None  # written on the loop's own connection
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the file's write lock
        try:
            task = asyncio.create_task(queue.enqueue_appended(
                appends, insert, [("b", json_text(DOC), None)], run_at=now))
            started = asyncio.get_running_loop().time()
            await asyncio.sleep(0.2)
            # the loop kept running: the batch waits for the lock on the writer thread
            assert asyncio.get_running_loop().time() - started < 1.0
            assert not task.done() and appends.thread is not None
        finally:
            other.execute("COMMIT")
            other.close()
        await task
        # a batch over `inline_max_rows` goes to the thread as well
        await queue.enqueue_appended(appends, insert, [(f"c{i}", json_text(DOC), None)
                                                       for i in range(6)], run_at=now)
        assert sorted(await rows(queue)) == ["a", "b", *(f"c{i}" for i in range(6))]
    finally:
        await appends.close()


async def test_sqlite_appends_keep_the_write_ahead_log_bounded(sqlite_queue):
    """The loop's connection never checkpoints; the thread does, every `checkpoint_rows`."""
    queue, path, insert = sqlite_queue
    appends = SqliteAppends(path, checkpoint_rows=50)
    doc = json_text({"pad": "x" * 1500})  # a few rows per page: every batch adds pages
    try:
        for b in range(100):
            await queue.enqueue_appended(appends, insert, [(f"r{b}-{i}", doc, None)
                                                           for i in range(10)], run_at=utcnow())
        frames = Path(path + "-wal").stat().st_size // (4096 + 24)
        # Without checkpoints the log would hold every commit: about 800 pages here. With
        # them, at most two rounds of `checkpoint_rows` (about 100 pages) between restarts.
        assert frames < 250, frames
        async with queue.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(items))).scalar() == 1000
    finally:
        await appends.close()
