"""Group commit: requests arriving while a transaction is being written wait for the next one,
which stores them all. Each caller returns only after its own item is committed (a 202 still
means "stored"), but N concurrent writes cost one transaction instead of N: the database's
per-commit cost, not the request, bounds the rate. Job submissions and event publishing use it.

A group that fails as a whole (a unique key that another process inserted meanwhile, a value
the database refuses) is stored again one item at a time, so one bad item fails only its own
caller. An item alone that meets a unique key raced in is tried once more: its writer then
finds the row that got there first (a replay, or a conflict it reports for that item)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
R = TypeVar("R")

# `write(items)` stores a group in one transaction and returns one outcome per item, in order:
# a result, or the exception that caller gets. An exception raised by `write` fails the group.
Writer = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]

log = structlog.get_logger("servicegate.storage")


def default_writers(engine: AsyncEngine | None) -> int:
    """Concurrent group writers: one on SQLite (the file has one write lock anyway); on
    PostgreSQL a few transactions in flight at once, so that commits (and their WAL flushes)
    overlap."""
    return 1 if engine is not None and engine.dialect.name == "sqlite" else 4


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Writer[T, R], *, writers: int, max_weight: int = 500,
                 weight: Callable[[T], int] | None = None) -> None:
        """`writers`: groups written at once; `max_weight`: what one group holds at most, each
        item weighing `weight(item)` (1 without it); one item always fits on its own."""
        self.write = write
        self.max_writers = writers
        self.max_weight = max_weight
        self.weight = weight
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Store one item; returns its outcome once committed (raises what its write raised)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, done))
        if len(self._writers) < self.max_writers:
            writer = loop.create_task(self._drain())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)  # cancelled before it ran
        # Each caller has its own future: one going away cancels only its own (its item is still
        # written; the writer skips futures already done).
        return await done

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        if self.weight is None:
            n = min(len(self._waiting), max(self.max_weight, 1))
        else:
            total, n = 0, 0
            for item, _ in self._waiting:
                total += self.weight(item)
                if n and total > self.max_weight:
                    break
                n += 1
        batch = self._waiting[:n]
        del self._waiting[:n]
        return batch

    async def _drain(self) -> None:
        try:
            while batch := self._take():
                outcomes = await self._store([item for item, _ in batch])
                _settle(batch, outcomes)
        finally:
            # Give the slot back now, not in the task's done callback: callers woken by the
            # last group run first and submit again; they would find every slot taken by
            # writers that have finished, and wait forever.
            self._writers.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _store(self, items: list[T]) -> Sequence[R | BaseException]:
        if len(items) > 1:
            try:
                return await self.write(items)
            except Exception as exc:
                log.info("group_failed_storing_items_one_by_one", items=len(items),
                         error=type(exc).__name__)
        return [await self._store_alone(item) for item in items]

    async def _store_alone(self, item: T) -> R | BaseException:
        for attempt in (1, 2):
            try:
                return (await self.write([item]))[0]
            except IntegrityError as exc:
                if attempt == 2:
                    return exc
            except Exception as exc:
                return exc
        raise AssertionError("unreachable")


def _settle(batch: list[tuple[T, asyncio.Future[R]]],
            outcomes: Sequence[R | BaseException]) -> None:
    for (_, done), outcome in zip(batch, outcomes, strict=True):
        if done.done():
            continue
        if isinstance(outcome, BaseException):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)
