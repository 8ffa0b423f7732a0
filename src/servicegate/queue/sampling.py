"""Queue gauges for /metrics: depth by state and the age of the oldest due item, sampled
periodically by each queue's owner (webhook deliveries, jobs)."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from servicegate.queue.lease import LeaseQueue

log = structlog.get_logger("servicegate.queue")
SAMPLE_EVERY = 5.0


async def sample(queue: LeaseQueue, depth: Any, oldest_due: Any) -> None:
    """Set `depth{state}` (due, scheduled, leased) and `oldest_due` from one stats query."""
    stats = await queue.stats()
    depth.labels("due").set(stats.due)
    depth.labels("scheduled").set(stats.scheduled)
    depth.labels("leased").set(stats.leased)
    oldest_due.set(stats.oldest_due_seconds)


async def sample_forever(queue: LeaseQueue, depth: Any, oldest_due: Any, *, name: str,
                         every: float = SAMPLE_EVERY) -> None:
    while True:
        try:
            await sample(queue, depth, oldest_due)
        except Exception as exc:
            log.warning("queue_sample_failed", queue=name, error=str(exc))
        await asyncio.sleep(every)
