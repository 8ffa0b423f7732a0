"""Client authentication at the token endpoint, guarded against floods.

Verifying a client secret runs argon2 (tens of milliseconds of CPU, 64 MiB), so an attacker
guessing secrets would otherwise cost the gateway far more than the guess costs them:

- failed attempts are throttled per client id and per source address (token buckets, in
  process; an attempt takes a token while it is undecided, a success gives it back): once a
  bucket is empty, an attempt is refused (429 with Retry-After) before any database lookup
  or hash;
- secrets are verified on a small executor of their own, not the default thread pool that
  `python` actions share; verifications waiting beyond a bound are refused (429), not queued;
- `userloginfailed` events are coalesced: the first failure for a client id is published at
  once, later ones within `login_failure_window` are counted and published as one event with
  `count` when the window ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from cachetools import TTLCache

from servicegate.auth import credentials
from servicegate.ratelimit import TokenBuckets

log = structlog.get_logger("servicegate.logins")
Publish = Callable[[dict[str, Any]], Awaitable[None]]
MAX_TRACKED = 100_000  # client ids and addresses with recent failures, per process


class Throttled(Exception):
    """An attempt refused before verification; the message is safe to show the caller."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(slots=True)
class _Failures:
    """Failures of one client id since its last `userloginfailed` event."""

    window_end: float
    count: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


class LoginGuard:
    def __init__(self, *, per_client: int, per_address: int, window: float, workers: int,
                 queue: int, publish: Publish) -> None:
        self.window = window
        self._clients = TokenBuckets(per_client, window, MAX_TRACKED)
        self._addresses = TokenBuckets(per_address, window, MAX_TRACKED)
        self._executor = ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix="secret-verify")
        self._max_in_flight = workers + queue
        self._in_flight = 0
        self._publish = publish
        # an entry lives as long as its window: an expired one means the window is over
        self._failures: TTLCache[str, _Failures] = TTLCache(MAX_TRACKED, window)
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Verifications running or waiting for a thread."""
        return self._in_flight

    def attempt(self, client_id: str, address: str) -> None:
        """An attempt counts as a failure of this client id and address until `succeeded`
        says otherwise, so that concurrent attempts cannot pass the limit together; raise
        Throttled when either failed too often lately."""
        by_client = self._clients.take(client_id)
        by_address = self._addresses.take(address)
        if by_client.allowed and by_address.allowed:
            return
        if by_client.allowed:
            self._clients.give_back(client_id)
        if by_address.allowed:
            self._addresses.give_back(address)
        raise Throttled("too many failed client authentications; retry later",
                        max(1, by_client.retry_after, by_address.retry_after))

    def succeeded(self, client_id: str, address: str) -> None:
        self._clients.give_back(client_id)
        self._addresses.give_back(address)

    async def verify(self, client_id: str, address: str, secret_hash: str, secret: str) -> bool:
        """argon2 verification on the guard's own threads; an attempt that finds them all
        busy and the queue full is refused, and not counted as a failure."""
        if self._in_flight >= self._max_in_flight:
            self.succeeded(client_id, address)
            raise Throttled("too many client authentications at once; retry later", 1)
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, credentials.verify_secret,
                                              secret_hash, secret)
        finally:
            self._in_flight -= 1

    async def failed(self, client_id: str, data: dict[str, Any]) -> None:
        """Raise the event of a failed attempt (coalesced)."""
        loop = asyncio.get_running_loop()
        state = self._failures.get(client_id)
        if state is None:  # the first failure in a window is published at once
            self._failures[client_id] = _Failures(loop.time() + self.window)
            await self._send({**data, "count": 1})
            return
        state.count += 1
        state.data = data
        if state.timer is None:
            state.timer = loop.call_at(state.window_end, self._flush, client_id, state)

    def _flush(self, client_id: str, state: _Failures) -> None:
        """The window ended with failures not yet published: one event carries their count;
        the next window starts now, so a client id raises at most one event per window."""
        state.timer = None
        data, state.count = {**state.data, "count": state.count}, 0
        state.window_end = asyncio.get_running_loop().time() + self.window
        self._failures[client_id] = state
        task = asyncio.ensure_future(self._send(data))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, data: dict[str, Any]) -> None:
        try:
            await self._publish(data)
        except Exception as exc:  # a storage hiccup never fails a token request
            log.warning("login_event_failed", event_name="userloginfailed", error=str(exc))

    async def close(self) -> None:
        """Publish the counts still waiting for their window's end; stop the threads."""
        pending = [state for state in list(self._failures.values()) if state.timer is not None]
        for state in pending:
            assert state.timer is not None
            state.timer.cancel()
            state.timer = None
            await self._send({**state.data, "count": state.count})
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
