"""Group commit for job submissions (see `storage/group_commit.py`): concurrent submissions
share one transaction; each caller returns only after its row is committed.

A submission is a tuple of `COLUMNS` (the context already serialised). The rows of a group are
sent as one batch, stamped with the time of their transaction (a value shared by the batch,
sent once), through the driver-level writer of `storage/appends.py`
(`LeaseQueue.enqueue_appended`): no pool checkout per group.

On PostgreSQL one group is written at a time by default (`[jobs] intake_writers`): the next
group gathers while one commits. Fewer, larger statements cost less than overlapping commits
save: each costs the server 120-140 µs besides 7-8 µs per row. With the database on the
gateway's machine (2 cores, 64 connections), 1 writer answered 6-8 % more 202s than 4,
alternated in one server (bench/RESULTS.md, sixth session). A database across a network, where
a commit waits on round trips rather than CPU, may take more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from servicegate.clock import utcnow
from servicegate.queue import LeaseQueue
from servicegate.storage.appends import Appends
from servicegate.storage.group_commit import GroupCommit

MAX_BATCH = 500
# A group's weight: one per job, plus one per 16 KiB of its stored context. A group of small
# jobs holds up to MAX_BATCH of them; large ones (a context carries the request body, twice:
# parsed and raw) stop it at about 8 MiB, one job however large always fitting on its own: a
# burst of 1 MiB submissions must not become one statement of 1 GB (PostgreSQL's limit).
WEIGHT_UNIT = 16_384
COLUMNS = ("id", "client_id", "service", "context", "max_attempts")
NewJob = tuple[str, str, str, str, int]
_CONTEXT = COLUMNS.index("context")


class Intake:
    def __init__(self, queue: LeaseQueue, appends: Appends, max_batch: int = MAX_BATCH,
                 writers: int = 1, on_stored: Callable[[int], None] | None = None) -> None:
        """`writers`: groups written at once on PostgreSQL (`[jobs] intake_writers`); SQLite
        always writes one at a time. `on_stored(n)`: after each group committed (n jobs)."""
        self.queue = queue
        self.appends = appends
        self._insert = queue.inserter(COLUMNS, shared=("created_at", "updated_at"))
        self._group: GroupCommit[NewJob, None] = GroupCommit(
            self._append, writers=1 if queue.dialect == "sqlite" else writers,
            max_weight=max_batch, weight=_weight)
        self.on_stored = on_stored
        # `await add(job)`: store one job; returns once it is committed (raises what the
        # commit raised). The group's own method, not a coroutine wrapping it (one frame less
        # per submission).
        self.add: Callable[[NewJob], Awaitable[None]] = self._group.submit

    async def _append(self, jobs: list[NewJob]) -> list[Any]:
        now = utcnow()
        stamp = self._insert.bind("created_at", now)
        await self.queue.enqueue_appended(self.appends, self._insert, jobs, run_at=now,
                                          shared=(stamp, stamp))
        if self.on_stored is not None:
            self.on_stored(len(jobs))
        return [None] * len(jobs)


def _weight(job: NewJob) -> int:
    return 1 + len(job[_CONTEXT]) // WEIGHT_UNIT
