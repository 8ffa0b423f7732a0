"""`[jobs] intake_writers`: how many submission groups are committed at once (PostgreSQL; SQLite
always one, its file has one writer). Every submission is stored either way."""

import asyncio

from sqlalchemy import func, select

from servicegate.config import JobsConfig
from servicegate.jobs.intake import Intake
from servicegate.jobs.service import JobService
from servicegate.queue import LeaseQueue
from servicegate.storage.engine import batch_appends, json_text
from servicegate.storage.schema import jobs


class CountingAppends:
    """The real writer, with the number of groups in flight counted (each held a little)."""

    def __init__(self, real):
        self.real = real
        self.in_flight = self.most = 0

    async def append(self, insert, rows, shared=()):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.02)
            await self.real.append(insert, rows, shared)
        finally:
            self.in_flight -= 1

    async def close(self):
        await self.real.close()


async def test_groups_in_flight_follow_the_setting(engine):
    appends = CountingAppends(batch_appends(engine))
    intake = Intake(LeaseQueue(engine, jobs), appends, writers=3)
    try:
        async def submit(i: int) -> None:
            await intake.add((f"job_{i:04d}", "c", "s", json_text({"n": i}), 3))
            await asyncio.sleep(0.001 * (i % 7))  # and again, staggered
            await intake.add((f"job_{i:04d}b", "c", "s", json_text({"n": i}), 3))

        await asyncio.gather(*(submit(i) for i in range(60)))
    finally:
        await appends.close()
    assert appends.most == (1 if engine.dialect.name == "sqlite" else 3)
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(jobs))).scalar() == 120


def test_one_writer_by_default_and_the_setting_reaches_the_intake(engine):
    assert JobsConfig().intake_writers == 1
    service = JobService(engine, JobsConfig(intake_writers=5))
    expected = 1 if engine.dialect.name == "sqlite" else 5
    assert service.store.intake._group.max_writers == expected


async def test_large_submissions_make_smaller_groups(engine):
    """A group stops at about 8 MiB of contexts (or 500 jobs): a burst of large bodies never
    becomes one statement the database refuses; one job alone always fits."""
    appends = CountingAppends(batch_appends(engine))
    sizes: list[int] = []
    real_append = appends.append

    async def append(insert, rows, shared=()):
        sizes.append(len(rows))
        await real_append(insert, rows, shared)

    appends.append = append
    intake = Intake(LeaseQueue(engine, jobs), appends)
    big = json_text({"body": "x" * 1_000_000})
    huge = json_text({"body": "y" * 9_000_000})
    try:
        await asyncio.gather(*(intake.add((f"job_{i:04d}", "c", "s", big, 3)) for i in range(30)),
                             intake.add(("job_huge", "c", "s", huge, 3)))
        await asyncio.gather(*(intake.add((f"job_s{i:04d}", "c", "s", "{}", 3))
                               for i in range(600)))
    finally:
        await appends.close()
    assert sum(sizes) == 631
    assert max(sizes[:-2]) <= 9  # 1 MB each: ~8 MiB groups (the small burst comes last)
    assert max(sizes) == 500  # small jobs: the row cap
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(jobs))).scalar() == 631
