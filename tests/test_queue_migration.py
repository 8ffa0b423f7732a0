"""Upgrading to `lease_until` (0005) keeps the queue's items and their leases, on both backends."""

from datetime import timedelta

from alembic import command
from sqlalchemy import insert, select

from servicegate.clock import as_utc, utcnow
from servicegate.queue import PENDING, LeaseQueue
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import _config, upgrade
from servicegate.storage.schema import jobs


async def test_items_leased_before_the_upgrade_stay_leased_until_their_lease_ends(fresh_url):
    engine = create_engine(fresh_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_config(c), "0004_jobs"))
        now = utcnow()
        lease_end = now + timedelta(seconds=60)
        base = {"client_id": "c", "service": "s", "context": {}, "max_attempts": 3,
                "created_at": now, "updated_at": now}
        old = [c for c in jobs.c if c.name != "lease_until"]  # the 0004 table
        async with engine.begin() as conn:
            for item in (
                {"id": "leased", "status": PENDING, "run_at": lease_end, "lease_token": "t" * 32,
                 "attempts": 1},
                {"id": "due", "status": PENDING, "run_at": now - timedelta(seconds=1),
                 "lease_token": None, "attempts": 0},
                {"id": "done", "status": "succeeded", "run_at": now, "lease_token": None,
                 "attempts": 1},
            ):
                await conn.execute(insert(jobs).values({**base, **item}).returning(*old))
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = {r.id: r for r in (await conn.execute(select(jobs))).all()}
        assert set(rows) == {"leased", "due", "done"}
        assert as_utc(rows["leased"].lease_until) == lease_end
        assert rows["due"].lease_until is None and rows["done"].lease_until is None
        queue = LeaseQueue(engine, jobs)
        stats = await queue.stats(now=now)
        assert (stats.due, stats.scheduled, stats.leased) == (1, 0, 1)
        assert [r.id for r in (await queue.claim(10, 120, now=now)).rows] == ["due"]
        # the old worker died: its item is claimed again once its lease has run out
        later = lease_end + timedelta(seconds=1)
        assert [r.id for r in (await queue.claim(10, 30, now=later)).rows] == ["leased"]
    finally:
        await engine.dispose()
