"""Job submission (`JobStore.submit`), on both backends: every submission, keyed or not, is
group-committed in one engine transaction per group; each row is what a Core insert of its
values stores; a key names one job however the submissions carrying it meet."""

import asyncio
import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from servicegate.clock import as_utc, utcnow
from servicegate.config import JobsConfig
from servicegate.jobs.service import JobService
from servicegate.jobs.store import IdempotencyMismatch, JobStore, fingerprint
from servicegate.queue import PENDING, LeaseQueue
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import upgrade
from servicegate.storage.schema import jobs
from tests.support.databases import end_pooled_connection, truncate_all


def context(n: int = 0, **extra) -> dict:
    return {"definition": "svc", "via": "services", "method": "POST", "received_at": 1.5,
            "body": {"n": n}, "raw_body": f"e30{n}", **extra}


def store_for(engine, **kwargs) -> JobStore:
    return JobStore(engine, LeaseQueue(engine, jobs), idempotency_ttl=3600, **kwargs)


async def job_rows(engine) -> list:
    async with engine.connect() as conn:
        return (await conn.execute(select(jobs).order_by(jobs.c.id))).all()


async def count(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(jobs))).scalar()


class CountingWrites:
    """The store's own group writer, with each group's size and the groups in flight counted
    (each held a little, so that groups can overlap)."""

    def __init__(self, store: JobStore, hold: float = 0.0) -> None:
        self.real, self.hold = store.group.write, hold
        self.sizes: list[int] = []
        self.in_flight = self.most = 0
        store.group.write = self

    async def __call__(self, group):
        self.sizes.append(len(group))
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.hold)
            return await self.real(group)
        finally:
            self.in_flight -= 1


# -- what is stored ----------------------------------------------------------------------------

async def test_a_submission_stores_its_values_as_a_new_queue_item(engine):
    stored_counts: list[int] = []
    store = store_for(engine, on_stored=stored_counts.append)
    before = utcnow()
    plain, keyed = await asyncio.gather(
        store.submit(context(1), "client-a", 3),
        store.submit(context(2, segments=["x"]), "client-b", 5, idempotency_key="k-1"))
    assert plain.status == keyed.status == "queued" and not plain.replayed
    assert plain.job_id.startswith("job_") and len(plain.job_id) == 4 + 14 + 32
    rows = {r.id: r for r in await job_rows(engine)}
    a, b = rows[plain.job_id], rows[keyed.job_id]
    assert (a.client_id, a.service, a.context, a.max_attempts) == ("client-a", "svc", context(1), 3)
    assert (a.idempotency_key, a.request_hash) == (None, None)
    assert (b.idempotency_key, b.request_hash) == ("k-1", fingerprint(context(2, segments=["x"])))
    for row in (a, b):
        assert (row.status, row.lease_token, row.lease_until, row.attempts) == (PENDING, None,
                                                                               None, 0)
        assert before <= as_utc(row.created_at) == as_utc(row.updated_at) == as_utc(row.run_at)
        assert row.result is None and row.finished_at is None
    assert sum(stored_counts) == 2
    claimed = await store.queue.claim(10, lease=30)  # due at once
    assert sorted(r.id for r in claimed.rows) == sorted(rows)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    # PostgreSQL text holds no NUL character; surrogates are not Unicode scalar values
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=4),
    max_leaves=12)


KEYS = itertools.count()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(json_values, min_size=1, max_size=6), st.booleans())
def test_every_context_comes_back_as_it_was_submitted(migrated_url, bodies, keyed):
    """A group of submissions, each with any JSON body: each row holds its own context."""
    async def round_trip():
        engine = create_engine(migrated_url)
        try:
            store = store_for(engine)
            sent = [context(i, data=body) for i, body in enumerate(bodies)]
            done = await asyncio.gather(*(
                store.submit(c, "c", 1, idempotency_key=f"k{next(KEYS)}" if keyed else None)
                for c in sent))
            async with engine.connect() as conn:
                back = dict((await conn.execute(select(jobs.c.id, jobs.c.context).where(
                    jobs.c.id.in_([d.job_id for d in done])))).all())
            assert [back[d.job_id] for d in done] == sent
        finally:
            await engine.dispose()

    asyncio.run(round_trip())


# -- groups ------------------------------------------------------------------------------------

async def test_concurrent_submissions_share_groups_and_each_is_stored(engine):
    store = store_for(engine)
    writes = CountingWrites(store)
    answers = await asyncio.gather(*(store.submit(context(i), "c", 1) for i in range(200)))
    assert len({a.job_id for a in answers}) == 200 and await count(engine) == 200
    assert sum(writes.sizes) == 200 and max(writes.sizes) > 1


async def test_large_submissions_make_smaller_groups(engine):
    """A group stops at about 8 MiB of contexts (or 500 jobs): a burst of large bodies never
    becomes one statement the database refuses; one job alone always fits."""
    store = store_for(engine)
    writes = CountingWrites(store)
    big, huge = "x" * 1_000_000, "y" * 9_000_000
    await asyncio.gather(*(store.submit(context(i, raw_body=big), "c", 1) for i in range(30)),
                         store.submit(context(99, raw_body=huge), "c", 1))
    large = list(writes.sizes)
    await asyncio.gather(*(store.submit(context(i), "c", 1) for i in range(600)))
    assert sum(writes.sizes) == 631 and await count(engine) == 631
    assert max(large) <= 9  # 1 MB each: ~8 MiB groups
    assert max(writes.sizes) == 500  # small jobs: the group's cap


async def test_groups_in_flight_follow_the_setting(engine):
    store = store_for(engine, writers=3)
    writes = CountingWrites(store, hold=0.02)

    async def submit(i: int) -> None:
        await store.submit(context(i), "c", 1)
        await asyncio.sleep(0.001 * (i % 7))  # and again, staggered
        await store.submit(context(i), "c", 1)

    await asyncio.gather(*(submit(i) for i in range(60)))
    assert writes.most == (1 if engine.dialect.name == "sqlite" else 3)
    assert await count(engine) == 120


def test_one_writer_by_default_and_the_setting_reaches_the_store(engine):
    assert JobsConfig().intake_writers == 1
    service = JobService(engine, JobsConfig(intake_writers=5))
    assert service.store.group.max_writers == (1 if engine.dialect.name == "sqlite" else 5)


# -- idempotency keys --------------------------------------------------------------------------

async def test_keys_in_one_group_are_taken_in_order(engine):
    store = store_for(engine)
    writes = CountingWrites(store)
    first, again, other, mismatch, second_client = await asyncio.gather(
        store.submit(context(1), "c", 1, idempotency_key="k"),
        store.submit(context(1), "c", 1, idempotency_key="k"),
        store.submit(context(2), "c", 1),
        store.submit(context(3), "c", 1, idempotency_key="k"),
        store.submit(context(1), "d", 1, idempotency_key="k"),
        return_exceptions=True)
    assert writes.sizes == [5]  # one group
    assert not first.replayed and again == (first.job_id, "queued", True)
    assert isinstance(mismatch, IdempotencyMismatch) and mismatch.args == (first.job_id,)
    assert not other.replayed and not second_client.replayed  # a key is per client
    assert await count(engine) == 3
    # later: the stored job answers, with its current status
    await store.queue.claim(10, lease=30)
    replay = await store.submit(context(1), "c", 1, idempotency_key="k")
    assert replay == (first.job_id, "running", True)


async def test_a_key_past_its_ttl_is_free_again(engine):
    store = store_for(engine)
    old = await store.submit(context(1), "c", 1, idempotency_key="k")
    async with engine.begin() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == old.job_id)
                           .values(created_at=utcnow() - timedelta(hours=2)))
    new = await store.submit(context(2), "c", 1, idempotency_key="k")
    assert new.job_id != old.job_id and not new.replayed
    rows = {r.id: r for r in await job_rows(engine)}
    assert rows[old.job_id].idempotency_key is None and rows[new.job_id].idempotency_key == "k"


async def test_concurrent_submissions_with_one_key_from_two_processes_give_one_job(
        engine, database_url):
    """Two gateways (an engine each) submit the same key at once, in groups of their own: one
    job; every answer names it (on PostgreSQL a group may meet the other's row at insert, and
    is stored again item by item)."""
    other_engine = create_engine(database_url)
    try:
        stores = [store_for(engine, writers=4), store_for(other_engine, writers=4)]
        answers = await asyncio.gather(*(
            stores[i % 2].submit(context(1), "c", 1, idempotency_key="same")
            for i in range(24)))
    finally:
        await other_engine.dispose()
    assert len({a.job_id for a in answers}) == 1
    assert sum(not a.replayed for a in answers) == 1
    assert await count(engine) == 1


@pytest.mark.postgres
async def test_a_key_raced_in_between_look_up_and_insert_is_replayed(postgres_url):
    """Another process commits the same key after the group looked it up: the group's insert
    fails (IntegrityError) and is stored again item by item; the raced submission then finds
    the other job, and the rest of the group is stored."""
    engine = create_engine(postgres_url)
    await upgrade(engine)
    await truncate_all(engine)
    other = store_for(engine)
    raced: list[str] = []

    class Racing(JobStore):
        async def _answer_keys(self, conn, group, now):
            answers = await super()._answer_keys(conn, group, now)
            if not raced:  # once: the other process gets there first
                raced.append((await other.submit(context(1), "c", 1, "k")).job_id)
            return answers

    store = Racing(engine, LeaseQueue(engine, jobs), idempotency_ttl=3600)
    writes = CountingWrites(store)
    try:
        keyed, plain = await asyncio.gather(
            store.submit(context(1), "c", 1, idempotency_key="k"),
            store.submit(context(2), "c", 1))
        assert keyed == (raced[0], "queued", True) and not plain.replayed
        assert writes.sizes == [2, 1, 1]
        assert await count(engine) == 2
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_connection_the_server_ended_does_not_fail_the_next_submission(postgres_url):
    engine = create_engine(postgres_url, pool_size=1)
    try:
        await upgrade(engine)
        await truncate_all(engine)
        store = store_for(engine)
        first = await store.submit(context(1), "c", 1)
        pid = await end_pooled_connection(engine)
        second = await store.submit(context(2), "c", 1, idempotency_key="k")
        assert {r.id for r in await job_rows(engine)} == {first.job_id, second.job_id}
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        await engine.dispose()
