"""Group commit: requests arriving while a transaction is being written wait for the next one,
which stores them all. Each caller returns only after its own item is committed (a 202 still
means "stored"), but N concurrent writes cost one transaction instead of N - the database's
per-commit cost, not the request, bounds the rate. Job intake and event publishing use it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
R = TypeVar("R")

# `write(items)` stores a group in one transaction and returns one outcome per item, in order:
# a result, or the exception that caller gets. An exception raised by `write` fails the group.
Writer = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


def default_writers(engine: AsyncEngine | None) -> int:
    """Event publishing's writers. SQLite: one writer at a time (the file has one write lock
    anyway); PostgreSQL: a few transactions in flight at once, so commits (and their WAL
    flushes) overlap. (Job intake has its own setting, `[jobs] intake_writers`, 1 by default:
    with the database on the gateway's machine one writer measured faster than 4. For publishing
    one writer against 4 was mixed there: single events +10 %, batches of 100 -8 %,
    bench/RESULTS.md, seventh session.)"""
    return 1 if engine is not None and engine.dialect.name == "sqlite" else 4


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Writer[T, R], *, writers: int, max_weight: int = 500,
                 weight: Callable[[T], int] | None = None) -> None:
        self.write = write
        self.max_writers = writers
        self.max_weight = max_weight
        self.weight = weight
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writers: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop submissions run on. `asyncio.get_running_loop()` makes a system call
        (`getpid`, CPython 3.11) each time: 3 µs a submission on this machine, 8 % of the
        event loop's time at 15k submissions/s. The loop is kept instead, and looked up again
        once it is no longer running (a new loop: tests, a restarted runtime)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    async def submit(self, item: T) -> R:
        """Store one item; returns its outcome once committed (raises what its write raised)."""
        loop = self._running_loop()
        done: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, done))
        if len(self._writers) < self.max_writers:
            writer = loop.create_task(self._drain(loop))
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)  # cancelled before it ran
        # Each caller has its own future: one going away cancels only its own (its item is still
        # written; the writer skips futures already done).
        return await done

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        if self.weight is None:  # every item weighs 1 (and a group holds one at least)
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

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while batch := self._take():
                try:
                    outcomes = await self.write([item for item, _ in batch])
                except Exception as exc:  # a failed write fails its group only
                    outcomes = [exc] * len(batch)
                _settle(batch, outcomes)
        finally:
            # Give the slot back now, not in the task's done callback: callers woken by the
            # last group run first and submit again; they would find every slot taken by
            # writers that have finished, and wait forever.
            self._writers.discard(asyncio.current_task(loop))  # type: ignore[arg-type]


def _settle(batch: list[tuple[T, asyncio.Future[R]]],
            outcomes: Sequence[R | BaseException]) -> None:
    for (_, done), outcome in zip(batch, outcomes, strict=True):
        if done.done():
            continue
        if isinstance(outcome, BaseException):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)
