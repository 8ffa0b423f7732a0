"""Group commit for job submissions (see `storage/group_commit.py`): concurrent submissions
share one transaction; each caller returns only after its row is committed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from servicegate.queue import LeaseQueue
from servicegate.storage.group_commit import GroupCommit, default_writers

MAX_BATCH = 500


class Intake:
    def __init__(self, queue: LeaseQueue, max_batch: int = MAX_BATCH,
                 writers: int | None = None) -> None:
        self.queue = queue
        self._group: GroupCommit[Mapping[str, Any], None] = GroupCommit(
            self._write, writers=writers or default_writers(queue.engine), max_weight=max_batch)

    async def add(self, values: Mapping[str, Any]) -> None:
        """Store one queue row; returns once it is committed (raises what the commit raised)."""
        await self._group.submit(values)

    async def _write(self, rows: list[Mapping[str, Any]]) -> list[None]:
        async with self.queue.transaction() as conn:
            await self.queue.enqueue(conn, rows)
        return [None] * len(rows)
