"""Everything jobs need at run time, built once per process: queue, store, workers, pruning."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.actions.base import ActionServices
from servicegate.config import JobsConfig
from servicegate.definitions.registry import DefinitionRegistry
from servicegate.jobs import metrics, retention
from servicegate.jobs.store import JobStore, Submitted
from servicegate.jobs.worker import JobWorker
from servicegate.queue import LeaseQueue, sampling
from servicegate.storage.schema import jobs
from servicegate.webhooks.publisher import EventPublisher

log = structlog.get_logger("servicegate.jobs")
Spawn = Callable[[str, Coroutine[Any, Any, None]], None]


class JobService:
    def __init__(self, engine: AsyncEngine, config: JobsConfig) -> None:
        self.engine = engine
        self.config = config
        self.queue = LeaseQueue(engine, jobs)
        self.store = JobStore(engine, self.queue, config.idempotency_ttl,
                              config.intake_writers, on_stored=self._stored)
        self.workers: list[JobWorker] = []

    async def submit(self, context: dict[str, Any], client_id: str,
                     idempotency_key: str | None) -> Submitted:
        return await self.store.submit(context, client_id, self.config.max_attempts,
                                       idempotency_key)

    def _stored(self, n: int) -> None:
        """New jobs committed (a group of them): counted, and the workers
        of this process told at once instead of at their next poll."""
        metrics.SUBMITTED.inc(n)
        for worker in self.workers:
            worker.notify()

    def start_workers(self, spawn: Spawn, definitions: DefinitionRegistry,
                      services: ActionServices, events: EventPublisher, *,
                      housekeeping: bool = True) -> None:
        for n in range(self.config.workers):
            worker = JobWorker(f"jobs-{n}", self.queue, self.config, definitions, services,
                               events)
            self.workers.append(worker)
            spawn(worker.name, worker.run())
        if housekeeping:
            spawn("jobs-retention", self._prune_loop())
            spawn("jobs-metrics", sampling.sample_forever(
                self.queue, metrics.QUEUE_DEPTH, metrics.OLDEST_DUE, name="jobs"))

    def close(self) -> None:
        self.workers.clear()

    async def _prune_loop(self) -> None:
        while True:
            try:
                pruned = await retention.prune(self.engine, self.config.retention)
                if pruned:
                    log.info("jobs_pruned", count=pruned)
            except Exception as exc:
                log.warning("jobs_prune_failed", error=str(exc))
            await asyncio.sleep(self.config.prune_interval)

    async def sample_metrics(self) -> None:
        """Queue depth and the age of the oldest due item, for /metrics."""
        await sampling.sample(self.queue, metrics.QUEUE_DEPTH, metrics.OLDEST_DUE)
