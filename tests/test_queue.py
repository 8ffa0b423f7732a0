"""The claim-and-lease queue on its own, over a table of its own, on both backends."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from servicegate.clock import utcnow
from servicegate.queue import DONE, PENDING, LeaseQueue, queue_columns, queue_index
from servicegate.queue.sampling import pause_after
from servicegate.storage.engine import create_engine

meta = MetaData()
jobs = Table("test_queue_jobs", meta, Column("id", String(20), primary_key=True),
             Column("payload", Integer), *queue_columns(), queue_index("test_queue_jobs"))


@pytest.fixture
async def queue(engine):
    async with engine.begin() as conn:
        await conn.run_sync(meta.drop_all)
        await conn.run_sync(meta.create_all)
    yield LeaseQueue(engine, jobs)
    async with engine.begin() as conn:
        await conn.run_sync(meta.drop_all)


async def fill(queue, n, **kw):
    async with queue.engine.begin() as conn:
        await queue.enqueue(conn, [{"id": f"j{i:04d}", "payload": i} for i in range(n)], **kw)


def test_a_table_without_queue_columns_is_refused():
    with pytest.raises(ValueError, match="lacks the queue column"):
        LeaseQueue(None, Table("plain", MetaData(), Column("id", Integer, primary_key=True)))


async def test_claim_complete_retry_fail_release(queue):
    await fill(queue, 5)
    first = await queue.claim(3, lease=30)
    assert sorted(r.id for r in first.rows) == ["j0000", "j0001", "j0002"]
    assert all(r.attempts == 1 for r in first.rows)
    second = await queue.claim(10, lease=30)
    assert sorted(r.id for r in second.rows) == ["j0003", "j0004"]
    assert (await queue.claim(10, lease=30)).rows == []
    later = utcnow() + timedelta(hours=1)
    async with queue.engine.begin() as conn:
        await queue.settle(conn, [
            queue.done("j0000", first.token),
            queue.retry_at("j0001", first.token, later),
            queue.failed("j0002", first.token),
            queue.done("j0003", first.token),  # not this token's item: ignored
        ])
    await queue.release(second.token, ["j0003", "j0004"])
    async with queue.engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(select(jobs))).all()}
    assert rows["j0000"].status == DONE and rows["j0002"].status == "failed"
    assert rows["j0001"].status == PENDING and rows["j0001"].lease_token is None
    assert rows["j0003"].attempts == 0 and rows["j0003"].lease_token is None
    again = await queue.claim(10, lease=30)
    assert sorted(r.id for r in again.rows) == ["j0003", "j0004"]
    stats = await queue.stats()
    assert (stats.due, stats.scheduled, stats.leased) == (0, 1, 2)


async def test_expired_lease_is_reclaimed_and_stale_owner_cannot_settle(queue):
    await fill(queue, 1)
    dead = await queue.claim(1, lease=0.2)
    assert (await queue.claim(1, lease=0.2)).rows == []
    await asyncio.sleep(0.3)
    stats = await queue.stats()
    assert stats.due == 1 and stats.oldest_due_seconds > 0
    alive = await queue.claim(1, lease=30)
    assert [r.attempts for r in alive.rows] == [2]
    async with queue.engine.begin() as conn:
        await queue.settle(conn, [queue.failed("j0000", dead.token)])
        await queue.settle(conn, [queue.done("j0000", alive.token)])
    async with queue.engine.connect() as conn:
        assert (await conn.execute(select(jobs.c.status))).scalar_one() == DONE


async def test_parked_items_are_skipped_until_resumed(queue):
    await fill(queue, 4)
    async with queue.engine.begin() as conn:
        assert await queue.hold(conn, jobs.c.payload < 2, "held") == 2
    assert sorted(r.id for r in (await queue.claim(10, lease=30)).rows) == ["j0002", "j0003"]
    async with queue.engine.begin() as conn:
        assert await queue.resume(conn, jobs.c.id == "j0000", from_status="held") == 1
    assert [r.id for r in (await queue.claim(10, lease=30)).rows] == ["j0000"]


async def test_concurrent_claimers_never_share_an_item(queue, database_url):
    """Separate engines (separate connections, as separate processes would have)."""
    await fill(queue, 400)
    engines = [create_engine(database_url) for _ in range(4)]
    try:
        queues = [LeaseQueue(e, jobs) for e in engines]
        claimed: list[str] = []

        async def drain(q):
            while True:
                claim = await q.claim(7, lease=60)
                if not claim.rows:
                    return
                claimed.extend(r.id for r in claim.rows)
                await asyncio.sleep(0)

        await asyncio.gather(*(drain(q) for q in queues for _ in range(2)))
    finally:
        for e in engines:
            await e.dispose()
    assert len(claimed) == 400 and len(set(claimed)) == 400



async def test_a_claim_walks_the_due_index_in_order_without_sorting(queue):
    """A claim reads the due items in the (partial) due index's order and stops at its limit,
    rather than fetching and sorting every due item. (Statistics that see few pending items made
    PostgreSQL's planner do that on a backlog; claims now run with sorting off. Such statistics
    are hard to stage here: this checks the plan's shape, and that the claim's literal `status =
    'pending'` lets the planner use the partial index.)"""
    await fill(queue, 2000)
    now = utcnow()
    params = {"q_now": now, "q_limit": 100, "q_token": "t" * 32,
              "q_until": now + timedelta(seconds=30)}
    compiled = queue._claim_statement(()).compile(dialect=queue.engine.dialect)
    args = tuple(params.get(n, compiled.params.get(n)) for n in compiled.positiontup)
    explain, sorting = (("EXPLAIN ", "Sort") if queue.dialect == "postgresql"
                        else ("EXPLAIN QUERY PLAN ", "TEMP B-TREE"))
    async with queue.transaction(relaxed=True, claiming=True) as conn:
        plan = "\n".join(str(r) for r in (
            await conn.exec_driver_sql(explain + str(compiled), args)).all())
    assert sorting not in plan and "ix_test_queue_jobs_due" in plan, plan


@pytest.mark.parametrize(("took", "pause"), [
    (0.0, 5.0),      # a cheap sample: every 5 s, start to start
    (0.25, 4.75),    # 5 % of the time exactly: still every 5 s
    (0.5, 9.5),      # slower: the pause grows so that sampling stays at 5 %
    (2.75, 52.25),   # a sample of a 5M-row backlog: about once a minute
])
def test_sampling_never_takes_more_than_five_percent_of_the_time(took, pause):
    assert pause_after(took) == pytest.approx(pause)
    assert took / (took + pause_after(took)) <= 0.05 + 1e-9
