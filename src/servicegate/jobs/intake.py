"""Group commit for job submissions (see `storage/group_commit.py`): concurrent submissions
share one transaction; each caller returns only after its row is committed.

A submission is a tuple of `COLUMNS` but the timestamps (the context already serialised):
the rows of a group are sent as one executemany (`LeaseQueue.enqueue_rows`), stamped with the
time of their transaction."""

from __future__ import annotations

from typing import Any

from servicegate.clock import utcnow
from servicegate.queue import LeaseQueue
from servicegate.storage.group_commit import GroupCommit, default_writers

MAX_BATCH = 500
COLUMNS = ("id", "client_id", "service", "context", "max_attempts")
NewJob = tuple[str, str, str, str, int]


class Intake:
    def __init__(self, queue: LeaseQueue, max_batch: int = MAX_BATCH,
                 writers: int | None = None) -> None:
        self.queue = queue
        self._insert = queue.inserter((*COLUMNS, "created_at", "updated_at"))
        self._group: GroupCommit[NewJob, None] = GroupCommit(
            self._write, writers=writers or default_writers(queue.engine), max_weight=max_batch)

    async def add(self, job: NewJob) -> None:
        """Store one job; returns once it is committed (raises what the commit raised)."""
        await self._group.submit(job)

    async def _write(self, jobs: list[NewJob]) -> list[Any]:
        now = utcnow()
        stamp = self._insert.bind("created_at", now)
        async with self.queue.transaction() as conn:
            await self.queue.enqueue_rows(conn, self._insert, [(*j, stamp, stamp) for j in jobs],
                                          run_at=now)
        return [None] * len(jobs)
