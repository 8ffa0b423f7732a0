"""The free list of connections behind PostgreSQL job intake (storage/writer_connections.py):
one connection per concurrent writer, reused; never one in an unknown state; idle ones closed."""

import asyncio

import asyncpg
import pytest

from servicegate.storage.driver_pool import asyncpg_connect_args
from servicegate.storage.engine import create_engine
from servicegate.storage.writer_connections import WriterConnections

pytestmark = pytest.mark.postgres


@pytest.fixture
async def connections(postgres_url):
    engine = create_engine(postgres_url)
    writers = WriterConnections(asyncpg_connect_args(engine.url))
    yield writers
    await writers.close()
    await engine.dispose()


async def pid_of(writers: WriterConnections, hold: float = 0.0) -> int:
    async with writers.connection() as pg:
        await asyncio.sleep(hold)
        return await pg.fetchval("SELECT pg_backend_pid()")


async def test_one_connection_per_concurrent_writer_each_reused(connections):
    first = await asyncio.gather(*(pid_of(connections, 0.05) for _ in range(3)))
    assert len(set(first)) == 3 and len(connections.idle) == 3
    again = await asyncio.gather(*(pid_of(connections, 0.05) for _ in range(3)))
    assert set(again) == set(first) and len(connections.idle) == 3
    last_back = connections.idle[-1][0].get_server_pid()
    assert await pid_of(connections) == last_back  # the most recently used first


async def test_an_error_the_server_reported_keeps_the_connection(connections):
    before = await pid_of(connections)
    with pytest.raises(asyncpg.PostgresError):
        async with connections.connection() as pg:
            await pg.execute("SELECT 1/0")
    assert await pid_of(connections) == before


async def test_a_cancelled_write_never_hands_its_connection_out_again(connections):
    before = await pid_of(connections)
    task = asyncio.create_task(pid_of(connections, hold=10))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connections.idle == []
    assert await pid_of(connections) != before


async def test_a_connection_the_server_ended_is_replaced(connections):
    before = await pid_of(connections)
    other = await asyncpg.connect(**connections.connect_args)
    try:
        await other.execute("SELECT pg_terminate_backend($1)", before)
    finally:
        await other.close()
    await asyncio.sleep(0.05)  # the idle connection sees the server close it
    assert await pid_of(connections) != before


async def test_idle_connections_are_closed_after_a_while(postgres_url):
    engine = create_engine(postgres_url)
    writers = WriterConnections(asyncpg_connect_args(engine.url), idle_seconds=0.2)
    try:
        await asyncio.gather(pid_of(writers, 0.05), pid_of(writers, 0.05))
        kept = [conn for conn, _ in writers.idle]
        assert len(kept) == 2
        await asyncio.sleep(0.2 + 0.3)
        assert writers.idle == [] and all(conn.is_closed() for conn in kept)
        await pid_of(writers)  # opens a new one
    finally:
        await writers.close()
        await engine.dispose()


async def test_close_ends_idle_connections_now_and_busy_ones_when_they_come_back(connections):
    first = set(await asyncio.gather(pid_of(connections, 0.05), pid_of(connections, 0.05)))
    async with connections.connection() as busy:
        idle = connections.idle[-1][0]
        await connections.close()
        assert idle.is_closed() and not busy.is_closed()
    assert connections.idle == []
    for _ in range(100):  # closed (politely, so a moment later) once it came back
        if busy.is_closed():
            break
        await asyncio.sleep(0.01)
    assert busy.is_closed()
    assert await pid_of(connections) not in first  # usable again, on a new connection
