"""The claim loop every queue worker runs: claim what there is room for, start it, and when
the queue runs dry wait for a wake-up or the next poll; back off while the database fails."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from servicegate.queue.lease import Claim, LeaseQueue

log = structlog.get_logger("servicegate.queue")
MAX_BACKOFF = 10.0


async def claim_forever(queue: LeaseQueue, *, worker: str, lease: float, poll_interval: float,
                        wake: asyncio.Event, room: asyncio.Event, room_for: Callable[[], int],
                        start: Callable[[Claim], object], columns: Sequence[str],
                        load: Callable[[Any, list[Any]], Awaitable[Any]] | None = None,
                        minimum: int = 1) -> None:
    """Claim up to `room_for()` items at a time (waiting on `room` while that is under
    `minimum`) and hand each claim to `start`. A full claim is followed by the next at once;
    a short one means the queue ran dry: wait for `wake` (new work in this process) or
    `poll_interval` (work from other processes, retries coming due)."""
    failures = 0
    while True:
        asked = room_for()
        if asked < minimum:
            room.clear()
            await room.wait()
            continue
        wake.clear()
        try:
            claim = await queue.claim(asked, lease, columns=columns, load=load)
            start(claim)
            failures = 0
        except Exception as exc:  # database unreachable and the like: keep trying
            failures += 1
            log.warning("claim_failed", worker=worker, error=str(exc))
            await asyncio.sleep(min(poll_interval * failures, MAX_BACKOFF))
            continue
        if len(claim.rows) == asked:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll_interval)
