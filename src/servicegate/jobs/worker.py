"""A job worker: claim due jobs with a lease, run up to `concurrency` at once through `invoke`,
renew the leases of running jobs, and settle outcomes with their `jobcomplete` / `jobfailed`
events in one transaction per batch.

At-least-once: a job whose worker died is claimed again once its lease runs out; its event ids
are derived from the job id, so a re-run never raises an event twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicegate.actions.base import ActionServices
from servicegate.actions.context import InvocationContext
from servicegate.clock import utcnow
from servicegate.config import JobsConfig
from servicegate.definitions.invoke import invoke
from servicegate.definitions.registry import DefinitionRegistry
from servicegate.jobs import metrics, policy
from servicegate.jobs.policy import Verdict
from servicegate.problems import Problem
from servicegate.queue import Claim, LeaseQueue
from servicegate.queue.claiming import claim_forever
from servicegate.storage.schema import jobs
from servicegate.webhooks.publisher import EventPublisher, NewEvent

log = structlog.get_logger("servicegate.jobs.worker")
CLAIMED = ("id", "client_id", "service", "context", "attempts", "max_attempts")
FLUSH_EVERY = 0.02
FLUSH_TRIES = 3


@dataclass(slots=True)
class _Finished:
    outcome: dict[str, Any]
    event: NewEvent | None
    owner: str


@dataclass
class JobWorker:
    name: str
    queue: LeaseQueue
    config: JobsConfig
    definitions: DefinitionRegistry
    services: ActionServices
    events: EventPublisher
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    running: dict[str, tuple[str, asyncio.Task[None]]] = field(default_factory=dict)
    _room: asyncio.Event = field(default_factory=asyncio.Event)
    _finished: list[_Finished] = field(default_factory=list)
    _has_finished: asyncio.Event = field(default_factory=asyncio.Event)
    _flush_failures: int = 0

    def notify(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        helpers = [asyncio.create_task(self._flush_loop(), name=f"{self.name}-flush"),
                   asyncio.create_task(self._renew_loop(), name=f"{self.name}-renew")]
        try:
            await self._claim_loop()
        finally:
            await self._shutdown(helpers)

    # -- claiming --------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        cfg = self.config
        await claim_forever(
            self.queue, worker=self.name, lease=cfg.lease, poll_interval=cfg.poll_interval,
            wake=self.wake, room=self._room, start=self._start, columns=CLAIMED, load=_started,
            room_for=lambda: cfg.concurrency - len(self.running))

    def _start(self, claim: Claim) -> None:
        for row in claim.rows:
            task = asyncio.create_task(self._run(claim.token, row), name=f"job-{row.id}")
            self.running[row.id] = (claim.token, task)

    # -- running ---------------------------------------------------------------------------
    async def _run(self, token: str, row: Any) -> None:
        started = time.perf_counter()
        trace = row.context.get("request_id") if isinstance(row.context, dict) else None
        try:
            context = InvocationContext.from_json(row.context)
            definition = self.definitions.get(row.service)
            if definition is None:
                verdict = Verdict("failed", None, policy.problem(
                    row.id, 404, f"no service definition named {row.service!r} any more",
                    trace_id=trace))
            else:
                result = await invoke(definition, context, self.services)
                verdict = policy.judge_result(row.id, result, self.config, trace)
        except Problem as exc:
            verdict = policy.judge_problem(row.id, exc, trace)
        except asyncio.CancelledError:
            raise  # shutdown: the job is released, not settled
        except Exception:
            log.exception("job_crashed", job=row.id, service=row.service)
            verdict = Verdict("failed", None, policy.problem(
                row.id, 500, "internal error while running the job; quote the traceId",
                trace_id=trace))
        self.running.pop(row.id, None)
        self._room.set()
        metrics.RUN_SECONDS.observe(time.perf_counter() - started)
        self._finish(token, row, verdict)

    def _finish(self, token: str, row: Any, verdict: Verdict) -> None:
        now = utcnow()
        q = self.queue
        retry = verdict.kind == "retry" and row.attempts < row.max_attempts
        metrics.ATTEMPTS.labels("retry" if retry else verdict.kind).inc()
        if retry:
            when = now + timedelta(seconds=policy.backoff(self.config, row.attempts))
            self._finished.append(_Finished(q.retry_at(
                row.id, token, when, result=verdict.result, error=verdict.error, updated_at=now),
                None, row.client_id))
        else:
            ok = verdict.kind == "succeeded"
            settle = q.done if ok else q.failed
            outcome = settle(row.id, token, result=verdict.result, error=verdict.error,
                             finished_at=now, updated_at=now)
            summary: dict[str, Any] = {"jobId": row.id, "service": row.service,
                                       "status": "succeeded" if ok else "failed",
                                       "attempts": row.attempts}
            if verdict.result is not None:
                summary["result"] = {"status": verdict.result["status"]}
            if verdict.error is not None:
                summary["error"] = {k: verdict.error.get(k) for k in ("status", "title", "detail")}
            name = "jobcomplete" if ok else "jobfailed"
            event = NewEvent(name, summary, id=f"{row.id}-{'complete' if ok else 'failed'}",
                             occurred_at=now)
            self._finished.append(_Finished(outcome, event, row.client_id))
        self._has_finished.set()

    # -- leases ----------------------------------------------------------------------------
    async def _renew_loop(self) -> None:
        """Running jobs keep their lease: a job may run far longer than the lease, while a
        crashed worker's jobs become due again within one lease."""
        while True:
            await asyncio.sleep(self.config.lease / 3)
            by_token: dict[str, list[str]] = defaultdict(list)
            for job_id, (token, _) in list(self.running.items()):
                by_token[token].append(job_id)
            for token, ids in by_token.items():
                try:
                    await self.queue.extend(token, ids, self.config.lease)
                except Exception as exc:
                    log.warning("lease_renewal_failed", worker=self.name, error=str(exc))

    # -- settling --------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            await self._has_finished.wait()
            await asyncio.sleep(FLUSH_EVERY)
            await self.flush()

    async def flush(self) -> None:
        batch, self._finished = self._finished, []
        self._has_finished.clear()
        if not batch:
            return
        try:
            async with self.queue.transaction() as conn:
                await self.queue.settle(conn, [f.outcome for f in batch])
                pending = await self._stage_events(conn, batch)
        except Exception as exc:
            self._flush_failures += 1
            log.error("settle_failed", worker=self.name, count=len(batch), error=str(exc))
            if self._flush_failures < FLUSH_TRIES:
                await asyncio.sleep(self.config.poll_interval * self._flush_failures)
                self._finished[:0] = batch
                self._has_finished.set()
            # else give up: the leases run out and the jobs run again (at-least-once).
            return
        self._flush_failures = 0
        if pending:
            self.events.wake()
        if any(f.event is None for f in batch):
            self.wake.set()  # a retry may be due at once

    async def _stage_events(self, conn: AsyncConnection, batch: list[_Finished]) -> int:
        by_owner: dict[str, list[NewEvent]] = defaultdict(list)
        for f in batch:
            if f.event is not None:
                by_owner[f.owner].append(f.event)
        pending = 0
        for owner, items in by_owner.items():
            pending += await self.events.stage(conn, items, owner=owner)
        return pending

    # -- stopping --------------------------------------------------------------------------
    async def _shutdown(self, helpers: list[asyncio.Task[None]]) -> None:
        """Let running jobs finish within `shutdown_grace`, release the rest, save outcomes."""
        tasks = [task for _, task in self.running.values()]
        if tasks:
            log.info("jobs_draining", worker=self.name, running=len(tasks),
                     grace=self.config.shutdown_grace)
            with contextlib.suppress(Exception):
                await asyncio.wait(tasks, timeout=self.config.shutdown_grace)
        unfinished = dict(self.running)
        for _, task in unfinished.values():
            task.cancel()
        await asyncio.gather(*(t for _, t in unfinished.values()), return_exceptions=True)
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        try:
            await self.flush()
            by_token: dict[str, list[str]] = defaultdict(list)
            for job_id, (token, _) in unfinished.items():
                by_token[token].append(job_id)
            for token, ids in by_token.items():
                await self.queue.release(token, ids)
            if unfinished:
                log.info("jobs_released", worker=self.name, count=len(unfinished))
        except Exception as exc:
            log.warning("shutdown_release_failed", worker=self.name, error=str(exc))


async def _started(conn: AsyncConnection, rows: list[Any]) -> None:
    """Stamp the first start of claimed jobs (inside the claim's transaction)."""
    await conn.execute(update(jobs).where(jobs.c.id.in_([r.id for r in rows]),
                                          jobs.c.started_at.is_(None))
                       .values(started_at=utcnow()))
