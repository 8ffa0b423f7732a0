"""Queue gauges for /metrics: depth by state and the age of the oldest due item, sampled
periodically by each queue's owner (webhook deliveries, jobs).

A sample counts the pending rows one by one (its time grows with the backlog), in every
gateway process, so under a large backlog sampling every `SAMPLE_EVERY` seconds would
take a growing share of a core just when the workers need it. The pause after a sample is
therefore at least `(1 - MAX_DUTY) / MAX_DUTY` times as long as the sample took: sampling
never takes more than `MAX_DUTY` of the time, and the gauges just update less often.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from servicegate.queue.lease import LeaseQueue

log = structlog.get_logger("servicegate.queue")
SAMPLE_EVERY = 5.0
MAX_DUTY = 0.05


def pause_after(took: float, every: float = SAMPLE_EVERY) -> float:
    """Seconds to wait after a sample that took `took` seconds."""
    return max(every - took, took * (1 - MAX_DUTY) / MAX_DUTY)


async def sample(queue: LeaseQueue, depth: Any, oldest_due: Any) -> None:
    """Set `depth{state}` (due, scheduled, leased) and `oldest_due` from one stats query."""
    stats = await queue.stats()
    depth.labels("due").set(stats.due)
    depth.labels("scheduled").set(stats.scheduled)
    depth.labels("leased").set(stats.leased)
    oldest_due.set(stats.oldest_due_seconds)


async def sample_forever(queue: LeaseQueue, depth: Any, oldest_due: Any, *, name: str,
                         every: float = SAMPLE_EVERY) -> None:
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            await sample(queue, depth, oldest_due)
        except Exception as exc:
            log.warning("queue_sample_failed", queue=name, error=str(exc))
        await asyncio.sleep(pause_after(loop.time() - started, every))
