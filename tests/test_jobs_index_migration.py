"""Migration 0006: the jobs' `finished_at` and idempotency-key indexes cover only the rows they
serve, on both backends; the table keeps its rows and its other indexes, keys stay unique, and
the migration goes down and up again."""


import pytest
from alembic import command
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from servicegate.clock import utcnow
from servicegate.queue import PENDING
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import _config, upgrade
from servicegate.storage.schema import jobs


def job(job_id: str, key: str | None = None, finished: bool = False) -> dict:
    now = utcnow()
    return {"id": job_id, "client_id": "c", "service": "s", "context": {}, "max_attempts": 3,
            "status": "succeeded" if finished else PENDING, "run_at": now, "attempts": 0,
            "idempotency_key": key, "created_at": now, "updated_at": now,
            "finished_at": now if finished else None}


def indexes(sync_conn) -> dict[str, tuple[bool, str | None]]:
    """name: (unique, predicate) of the jobs table's indexes."""
    found = {}
    for ix in inspect(sync_conn).get_indexes("jobs"):
        where = next((v for k, v in ix.get("dialect_options", {}).items()
                      if k.endswith("_where")), None)
        found[ix["name"]] = (bool(ix["unique"]), None if where is None else str(where))
    return found


async def test_job_indexes_become_partial_and_keep_their_rows(fresh_url):
    engine = create_engine(fresh_url)
    migrate = lambda target, down=False: lambda c: (  # noqa: E731
        command.downgrade if down else command.upgrade)(_config(c), target)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrate("0005_lease_until"))
            await conn.execute(insert(jobs), [job("a", key="k1"), job("b"), job("c"),
                                              job("d", finished=True)])
        await upgrade(engine)
        async with engine.connect() as conn:
            assert sorted((await conn.execute(select(jobs.c.id))).scalars()) == list("abcd")
            found = await conn.run_sync(indexes)
        unique, where = found["uq_jobs_idempotency"]
        assert unique and "idempotency_key IS NOT NULL" in where
        assert "finished_at IS NOT NULL" in found["ix_jobs_finished"][1]
        assert "pending" in found["ix_jobs_due"][1]  # rebuilt as it was (SQLite)
        assert found["ix_jobs_client"] == (False, None)
        async with engine.begin() as conn:  # more unkeyed jobs of the same client: fine
            await conn.execute(insert(jobs), [job("e"), job("f", key="k2")])
        with pytest.raises(IntegrityError):  # a key is still unique per client
            async with engine.begin() as conn:
                await conn.execute(insert(jobs), [job("g", key="k1")])
        async with engine.begin() as conn:
            await conn.run_sync(migrate("0005_lease_until", down=True))
            found = await conn.run_sync(indexes)
            # back to the constraint (both report its index) and the full index
            assert found["ix_jobs_finished"] == (False, None)
            assert found.get("uq_jobs_idempotency", (True, None)) == (True, None)
            constraints = await conn.run_sync(
                lambda c: [u["name"] for u in inspect(c).get_unique_constraints("jobs")])
            assert constraints == ["uq_jobs_idempotency"]
        await upgrade(engine)
        async with engine.connect() as conn:
            assert len((await conn.execute(select(jobs.c.id))).all()) == 6
    finally:
        await engine.dispose()
