"""Pruning: finished jobs (and their results) go `[jobs] retention` after they finished."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.clock import utcnow
from servicegate.jobs.store import FINISHED
from servicegate.storage.schema import jobs


async def prune(engine: AsyncEngine, retention: float, *, now: datetime | None = None) -> int:
    cutoff = (now or utcnow()) - timedelta(seconds=retention)
    async with engine.begin() as conn:
        result = await conn.execute(delete(jobs).where(jobs.c.finished_at < cutoff,
                                                       jobs.c.status.in_(FINISHED)))
    return int(result.rowcount or 0)
