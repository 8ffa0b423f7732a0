"""Parse import chunks in worker processes, in file order, with a bounded look-ahead.

Python runs one thread of bytecode at a time, so parsing in threads would not overlap with the
main process's own work. Worker processes (started with `spawn`: the importer's process has
database threads, which `fork` must not copy) each parse whole chunks; the results come back
in submission order, and at most `ahead` chunks are in flight, so memory stays constant
however large the file. With `workers=0`, or when the input fits in one chunk (no pool is
worth starting), chunks are parsed in this process.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from itertools import chain, islice

from servicegate.identity.parsing import Parsed, Record, parse

INLINE_SLICE = 64  # records parsed between yields to the event loop when parsing in-process


def default_workers() -> int:
    """One core for the writer (and the database), the others parse; at most 4 (beyond
    that the single writer is the limit)."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    it = iter(records)
    while chunk := list(islice(it, size)):
        yield chunk


def _start_worker() -> None:
    """Build the validators once, before the first chunk arrives, and collect cycles rarely:
    parsing allocates millions of acyclic objects (see `bulk_garbage_collection`)."""
    from servicegate.identity.model import Identity

    Identity.model_validate({"id": "warm-up"})
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(gc.get_threshold()[0], 20_000), *gc.get_threshold()[1:])


async def _inline(chunked: Iterable[list[Record]], stamp: datetime) -> AsyncIterator[Parsed]:
    for chunk in chunked:
        out = Parsed()
        for start in range(0, len(chunk), INLINE_SLICE):
            part = parse(chunk[start:start + INLINE_SLICE], stamp)
            out.rows.extend(part.rows)
            out.rejections.extend(part.rejections)
            await asyncio.sleep(0)  # let a write in flight send its next statement
        yield out


async def parsed_chunks(records: Iterable[Record], size: int, stamp: datetime,
                        workers: int) -> AsyncIterator[Parsed]:
    """The records parsed `size` at a time, in order."""
    it = chunks(records, size)
    head = list(islice(it, 2))  # a single chunk is not worth starting a process for
    chunked = chain(head, it)
    if workers <= 0 or len(head) < 2:
        async for parsed in _inline(chunked, stamp):
            yield parsed
        return
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker)
    ahead = 2 * workers + 1
    pending: deque[asyncio.Future[Parsed]] = deque()
    try:
        for chunk in chunked:
            pending.append(loop.run_in_executor(pool, parse, chunk, stamp))
            if len(pending) >= ahead:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for waiting in pending:
            waiting.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
