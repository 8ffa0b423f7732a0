"""Jobs in the database: submit (idempotent on a key), read, list, cancel; the public view.

Every submission, keyed (`Idempotency-Key`) or not, is group-committed
(`storage/group_commit.py`): submissions arriving together share one transaction, and each
caller returns once its job is committed."""

from __future__ import annotations

import hashlib
import operator
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.clock import as_utc, isoformat, utcnow
from servicegate.queue import DONE, FAILED, PENDING, LeaseQueue
from servicegate.storage.group_commit import GroupCommit
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
    return f"job_{time.time_ns() // 1000:014x}{secrets.token_hex(16)}"


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


class Submitted(NamedTuple):
    job_id: str
    status: str
    replayed: bool


class _Queued(NamedTuple):
    """A job stored earlier in the same group, as a later submission with its key sees it."""
    id: str
    request_hash: str | None
    status: str = PENDING
    lease_token: str | None = None


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


class NewJob(NamedTuple):
    """One submission waiting for its group: its row's values, and its key's."""
    job_id: str
    client_id: str
    context: dict[str, Any]
    max_attempts: int
    key: str | None
    request_hash: str | None
    weight: int


MAX_GROUP_WEIGHT = 500
# A group's weight: one per job, plus one per 16 KiB of its stored context. A group of small
# jobs holds up to MAX_GROUP_WEIGHT of them; large ones (a context carries the request body,
# twice: parsed and raw) stop it at about 8 MiB, one job however large always fitting on its
# own: a burst of 1 MiB submissions must not become one statement of 1 GB (PostgreSQL's limit).
WEIGHT_UNIT = 16_384
_KEYED = (jobs.c.id, jobs.c.client_id, jobs.c.idempotency_key, jobs.c.request_hash,
          jobs.c.status, jobs.c.lease_token)


class JobStore:
    def __init__(self, engine: AsyncEngine, queue: LeaseQueue, idempotency_ttl: float,
                 writers: int = 1, on_stored: Callable[[int], None] | None = None) -> None:
        """`writers`: submission groups committed at once on PostgreSQL (`[jobs]
        intake_writers`); SQLite always commits one at a time. `on_stored(n)`: after each
        commit of n new jobs (replays of a key are not new)."""
        self.engine = engine
        self.queue = queue
        self.idempotency_ttl = idempotency_ttl
        self.on_stored = on_stored
        self.group: GroupCommit[NewJob, Submitted] = GroupCommit(
            self._write, writers=1 if queue.dialect == "sqlite" else writers,
            max_weight=MAX_GROUP_WEIGHT, weight=operator.attrgetter("weight"))

    async def submit(self, context: dict[str, Any], client_id: str, max_attempts: int,
                     idempotency_key: str | None = None) -> Submitted:
        """Store a job for the request `context` (`InvocationContext.to_json`); returns once
        it is committed (or, for a key already used by the same request, that job). Raises
        IdempotencyMismatch for a key used by another request."""
        digest = None if idempotency_key is None else fingerprint(context)
        # the request body dominates a stored context, which holds it twice (parsed, and raw
        # in base64): its size weighs the job without serialising the context a second time
        weight = 1 + 2 * len(context.get("raw_body", "")) // WEIGHT_UNIT
        return await self.group.submit(NewJob(new_job_id(), client_id, context, max_attempts,
                                              idempotency_key, digest, weight))

    async def _write(self, group: list[NewJob]) -> list[Submitted | BaseException]:
        """One transaction for the group: keyed submissions answered from the jobs their key
        already names, every other one inserted (one statement for all)."""
        now = utcnow()
        async with self.queue.transaction() as conn:
            answers = await self._answer_keys(conn, group, now)
            new = [job for job, answer in zip(group, answers, strict=True) if answer is None]
            await self.queue.enqueue(conn, [_row(job, now) for job in new], run_at=now)
        if new and self.on_stored is not None:
            self.on_stored(len(new))
        return [Submitted(job.job_id, QUEUED, False) if answer is None else answer
                for job, answer in zip(group, answers, strict=True)]

    async def _answer_keys(self, conn: AsyncConnection, group: list[NewJob],
                           now: datetime) -> list[Submitted | BaseException | None]:
        """Per submission: None to store it, or its answer (the job its key names, replayed;
        IdempotencyMismatch for another request). Submissions of one group are taken in
        order, as if each ran alone: the second of two with the same key replays the first."""
        pairs = sorted({(job.client_id, job.key) for job in group if job.key is not None})
        if not pairs:
            return [None] * len(group)
        c = jobs.c
        # one index seek per key (a row-value IN list scans SQLite's whole index)
        mine = or_(*(and_(c.client_id == client, c.idempotency_key == key)
                     for client, key in pairs))
        # A key older than the TTL is free again: the old job keeps running, unkeyed.
        await conn.execute(update(jobs).where(
            mine, c.created_at < now - timedelta(seconds=self.idempotency_ttl))
            .values(idempotency_key=None))
        named = {(row.client_id, row.idempotency_key): row
                 for row in (await conn.execute(select(*_KEYED).where(mine))).all()}
        answers: list[Submitted | BaseException | None] = []
        for job in group:
            if job.key is None:
                answers.append(None)
                continue
            existing = named.get((job.client_id, job.key))
            if existing is None:
                named[job.client_id, job.key] = _Queued(job.job_id, job.request_hash)
                answers.append(None)
            elif existing.request_hash != job.request_hash:
                answers.append(IdempotencyMismatch(existing.id))
            else:
                answers.append(Submitted(existing.id,
                                         public_status(existing.status, existing.lease_token),
                                         True))
        return answers

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


def _row(job: NewJob, now: datetime) -> dict[str, Any]:
    return {"id": job.job_id, "client_id": job.client_id, "service": job.context["definition"],
            "context": job.context, "max_attempts": job.max_attempts,
            "idempotency_key": job.key, "request_hash": job.request_hash,
            "created_at": now, "updated_at": now}


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
