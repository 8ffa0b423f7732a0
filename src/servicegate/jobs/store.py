"""Jobs in the database: submit (idempotent on a key), read, list, cancel; the public view."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.clock import as_utc, isoformat, utcnow
from servicegate.jobs.intake import Intake
from servicegate.jobs.randomness import random_hex
from servicegate.queue import DONE, FAILED, PENDING, LeaseQueue
from servicegate.storage.appends import Appends
from servicegate.storage.engine import json_text
from servicegate.storage.schema import jobs

CANCELLED = "cancelled"
QUEUED = "queued"
RUNNING = "running"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED = (DONE, FAILED, CANCELLED)
_VIEW = (jobs.c.id, jobs.c.service, jobs.c.status, jobs.c.lease_token, jobs.c.attempts,
         jobs.c.run_at, jobs.c.result, jobs.c.error, jobs.c.created_at, jobs.c.started_at,
         jobs.c.finished_at)


def new_job_id() -> str:
    """Time-ordered (cursor pagination) and unguessable: 128 random bits after the time."""
    return f"job_{time.time_ns() // 1000:014x}{random_hex()}"


def public_status(status: str, lease_token: str | None) -> str:
    if status == PENDING:
        return RUNNING if lease_token else QUEUED
    return status


def fingerprint(context: dict[str, Any]) -> str:
    """What makes two submissions the same request: method, service, sub-path, query, body
    (of a stored context, `InvocationContext.to_json`, which leaves out empty fields: the
    material is the same whether they are there or not, so a key keeps its digest)."""
    material = orjson.dumps([context["method"], context["definition"],
                             context.get("segments", []), context.get("query", []),
                             context.get("raw_body", "")])
    return hashlib.sha256(material).hexdigest()


def view(row: Any) -> dict[str, Any]:
    return {
        "jobId": row.id,
        "service": row.service,
        "status": public_status(row.status, row.lease_token),
        "createdAt": isoformat(row.created_at),
        "startedAt": isoformat(row.started_at),
        "finishedAt": isoformat(row.finished_at),
        "attempts": row.attempts,
        "result": row.result,
        "error": row.error,
    }


class Submitted(NamedTuple):  # (a frozen dataclass's __init__ costs 1 µs per submission)
    job_id: str
    status: str
    replayed: bool


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


class IdempotencyMismatch(Exception):
    """The key was used for a different request (body, path, method or service)."""


class NoSuchJob(Exception):
    pass


class NotCancellable(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class JobStore:
    def __init__(self, engine: AsyncEngine, queue: LeaseQueue, idempotency_ttl: float,
                 appends: Appends, intake_writers: int = 1,
                 on_stored: Callable[[int], None] | None = None) -> None:
        """`on_stored(n)`: after n new jobs are committed (replays of a key are not new)."""
        self.engine = engine
        self.queue = queue
        self.idempotency_ttl = idempotency_ttl
        self.on_stored = on_stored
        self.intake = Intake(queue, appends, writers=intake_writers, on_stored=on_stored)

    async def submit(self, context: dict[str, Any], client_id: str, max_attempts: int,
                     idempotency_key: str | None = None) -> Submitted:
        """Store a job for the request `context` (`InvocationContext.to_json`); returns once
        it is committed (or, for a key already used by the same request, that job)."""
        job_id = new_job_id()
        if idempotency_key is None:
            await self.intake.add((job_id, client_id, context["definition"],
                                   json_text(context), max_attempts))
            return Submitted(job_id, QUEUED, False)
        now = utcnow()
        values = {"id": job_id, "client_id": client_id, "service": context["definition"],
                  "context": context, "max_attempts": max_attempts,
                  "created_at": now, "updated_at": now, "idempotency_key": idempotency_key}
        values["request_hash"] = digest = fingerprint(context)
        c = jobs.c
        mine = and_(c.client_id == client_id, c.idempotency_key == idempotency_key)
        for attempt in (1, 2):
            try:
                async with self.queue.transaction() as conn:
                    # A key older than the TTL is free again: the old job keeps running, unkeyed.
                    await conn.execute(update(jobs).where(
                        mine, c.created_at < now - timedelta(seconds=self.idempotency_ttl))
                        .values(idempotency_key=None))
                    existing = (await conn.execute(
                        select(c.id, c.request_hash, c.status, c.lease_token).where(mine)
                    )).first()
                    if existing is not None:
                        if existing.request_hash != digest:
                            raise IdempotencyMismatch(existing.id)
                        return Submitted(existing.id,
                                         public_status(existing.status, existing.lease_token),
                                         True)
                    await self.queue.enqueue(conn, [values], run_at=now)
                if self.on_stored is not None:
                    self.on_stored(1)
                return Submitted(job_id, QUEUED, False)
            except IntegrityError:  # the same key raced in from a concurrent request
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def get(self, client_id: str, job_id: str) -> Any:
        """The job's row (see `view`); another client's job is as unknown as a missing one."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*_VIEW).where(
                jobs.c.id == job_id, jobs.c.client_id == client_id))).first()
        if row is None:
            raise NoSuchJob(job_id)
        return row

    async def page(self, client_id: str, *, status: str | None, cursor: str | None,
                   limit: int) -> Page:
        """The caller's jobs, newest first; `cursor` is the last id of the previous page."""
        c = jobs.c
        query = select(*_VIEW).where(c.client_id == client_id)
        if status == QUEUED:
            query = query.where(c.status == PENDING, c.lease_token.is_(None))
        elif status == RUNNING:
            query = query.where(c.status == PENDING, c.lease_token.is_not(None))
        elif status is not None:
            query = query.where(c.status == status)
        if cursor is not None:
            query = query.where(c.id < cursor)
        query = query.order_by(c.id.desc()).limit(limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        more = len(rows) > limit
        items = [view(r) for r in rows[:limit]]
        return Page(items, items[-1]["jobId"] if more else None)

    async def cancel(self, client_id: str, job_id: str) -> Any:
        """Cancel a job no worker holds; raise NotCancellable with its status otherwise."""
        c = jobs.c
        now = utcnow()
        async with self.queue.transaction() as conn:
            held = await conn.execute(
                update(jobs).where(c.id == job_id, c.client_id == client_id, c.status == PENDING,
                                   c.lease_token.is_(None))
                .values(status=CANCELLED, finished_at=now, updated_at=now))
            changed = bool(held.rowcount)
        row = await self.get(client_id, job_id)
        if not changed:
            raise NotCancellable(public_status(row.status, row.lease_token))
        return row



def retry_after(row: Any, poll_after: float) -> int | None:
    """Seconds a poller should wait (None once finished): the backoff left while waiting."""
    status = public_status(row.status, row.lease_token)
    if status in FINISHED:
        return None
    wait = max(1, round(poll_after))
    due = as_utc(row.run_at)
    if status == QUEUED and due is not None:
        wait = max(wait, int((due - utcnow()).total_seconds()) + 1)
    return wait
