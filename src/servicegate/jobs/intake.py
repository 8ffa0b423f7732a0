"""Group commit for job submissions: requests arriving while a transaction is being written
wait for the next one, which stores them all. Each caller returns only after its row is
committed (the 202 still means "stored"), but N concurrent submissions cost one transaction
instead of N - the database's per-commit cost, not the request, bounds the 202 rate."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from servicegate.queue import LeaseQueue

MAX_BATCH = 500


class Intake:
    """On SQLite one writer at a time (the file has one write lock anyway); on PostgreSQL a
    few transactions in flight at once, so commits (and their WAL flushes) overlap."""

    def __init__(self, queue: LeaseQueue, max_batch: int = MAX_BATCH,
                 writers: int | None = None) -> None:
        self.queue = queue
        self.max_batch = max_batch
        sqlite = queue.engine is not None and queue.engine.dialect.name == "sqlite"
        self.max_writers = writers or (1 if sqlite else 4)
        self._waiting: list[tuple[Mapping[str, Any], asyncio.Future[None]]] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def add(self, values: Mapping[str, Any]) -> None:
        """Store one queue row; returns once it is committed (raises what the commit raised)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((values, done))
        if len(self._writers) < self.max_writers:
            writer = asyncio.create_task(self._write())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        await asyncio.shield(done)  # a caller going away does not cancel the others' commit

    async def _write(self) -> None:
        while self._waiting:
            batch = self._waiting[:self.max_batch]
            del self._waiting[:self.max_batch]
            try:
                async with self.queue.transaction() as conn:
                    await self.queue.enqueue(conn, [values for values, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
