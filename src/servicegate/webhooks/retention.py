"""Pruning: finished deliveries and old events go after `[webhooks] retention_days`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.clock import utcnow
from servicegate.config import WebhooksConfig
from servicegate.queue import DONE, FAILED
from servicegate.storage.schema import deliveries, delivery_attempts, events
from servicegate.webhooks.store import CANCELLED


@dataclass(frozen=True, slots=True)
class Pruned:
    deliveries: int
    events: int


async def prune(engine: AsyncEngine, config: WebhooksConfig, *, now: datetime | None = None) -> Pruned:
    now = now or utcnow()
    kept = now - timedelta(days=config.retention_days)
    kept_failed = now - timedelta(days=config.failed_retention_days)
    d = deliveries.c
    finished = (
        ((d.status.in_([DONE, CANCELLED])) & (d.completed_at < kept))
        | ((d.status == FAILED) & (d.completed_at < kept_failed))
    )
    async with engine.begin() as conn:
        doomed = select(d.id).where(finished).scalar_subquery()
        await conn.execute(delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(doomed)))
        gone = (await conn.execute(delete(deliveries).where(finished))).rowcount or 0
        referenced = exists().where(d.event_id == events.c.id)
        old = (await conn.execute(delete(events).where(events.c.created_at < kept, ~referenced))
               ).rowcount or 0
    return Pruned(int(gone), int(old))
