"""Delivery workers: claim due deliveries with a lease, send them concurrently, and settle the
outcomes in batches (attempt log, retry schedule, endpoint health) in one transaction each."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import structlog
from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.clock import as_utc, utcnow
from servicegate.config import WebhooksConfig
from servicegate.queue import Claim, LeaseQueue
from servicegate.queue.claiming import claim_forever
from servicegate.storage.id_lists import among
from servicegate.storage.schema import delivery_attempts, events, webhooks
from servicegate.webhooks import metrics, signing
from servicegate.webhooks.policy import next_delay
from servicegate.webhooks.sender import AttemptResult, send
from servicegate.webhooks.store import ACTIVE, CANCELLED, DISABLED, HELD, WebhookRecord, WebhookStore

log = structlog.get_logger("servicegate.webhooks.worker")
CLAIMED = ("id", "event_id", "webhook_id", "attempts", "attempt_budget")
FLUSH_EVERY = 0.04
FLUSH_MAX = 500
FLUSH_TRIES = 3


@dataclass(slots=True)
class _Settled:
    # The queue transition; None for a success, whose `done` is (token, id, status code):
    # the successes of a flush are completed together, one UPDATE per token and status code.
    outcome: dict[str, Any] | None
    attempt: dict[str, Any] | None = None  # a delivery_attempts row
    webhook_id: str | None = None
    verdict: str | None = None  # "ok", "final" (failed for good), "gone" (410)
    metric: str = "retry"
    done: tuple[str, Any, int | None] | None = None


@dataclass
class DeliveryWorker:
    name: str
    engine: AsyncEngine
    queue: LeaseQueue
    store: WebhookStore
    config: WebhooksConfig
    session: aiohttp.ClientSession
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _inflight: dict[int, tuple[str, Any]] = field(default_factory=dict)
    _ready: deque[tuple[str, Any, WebhookRecord, Any, bytes]] = field(default_factory=deque)
    _work: asyncio.Event = field(default_factory=asyncio.Event)
    _room: asyncio.Event = field(default_factory=asyncio.Event)
    _senders: list[asyncio.Task[None]] = field(default_factory=list)
    _results: list[_Settled] = field(default_factory=list)
    _has_results: asyncio.Event = field(default_factory=asyncio.Event)
    _flush_failures: int = 0
    _counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def notify(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush_loop(), name=f"{self.name}-flush")
        self._senders = [asyncio.create_task(self._send_loop(n), name=f"{self.name}-send-{n}")
                         for n in range(self.config.concurrency)]
        try:
            await self._claim_loop()
        finally:
            await self._shutdown(flusher)

    # -- claiming --------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        cfg = self.config
        # Hold up to `concurrency` deliveries on the wire plus one claim batch ready, and claim
        # in batches (at least half a batch), so the next batch is claimed while the current
        # one is being sent.
        capacity = cfg.concurrency + cfg.claim_batch
        await claim_forever(
            self.queue, worker=self.name, lease=cfg.lease, poll_interval=cfg.poll_interval,
            wake=self.wake, room=self._room, start=self._start, columns=CLAIMED, load=self._load,
            minimum=max(1, cfg.claim_batch // 2),
            room_for=lambda: min(capacity - len(self._inflight) - len(self._ready),
                                 cfg.claim_batch))

    async def _load(self, conn: AsyncConnection,
                    rows: list[Any]) -> tuple[dict[str, WebhookRecord], dict[str, Any]]:
        """The webhooks and events of claimed deliveries (inside the claim's transaction)."""
        hooks = await self.store.many((r.webhook_id for r in rows if r.webhook_id), conn)
        found = {e.id: e for e in (await conn.execute(
            select(events.c.id, events.c.event, events.c.data, events.c.occurred_at)
            .where(among(events.c.id, "event_ids", conn.dialect.name,
                         list({r.event_id for r in rows})))
        )).all()}
        return hooks, found

    def _start(self, claim: Claim) -> int:
        token, rows = claim.token, claim.rows
        if not rows:
            return 0
        hooks, found = claim.loaded
        bodies: dict[tuple[str, str | None], bytes] = {}
        include_secret = self.config.include_secret_in_payload
        for row in rows:
            hook = hooks.get(row.webhook_id) if row.webhook_id else None
            event = found.get(row.event_id)
            if hook is None or event is None:
                self._settle(_Settled(self.queue.park(
                    row.id, token, CANCELLED, attempts=row.attempts - 1, completed_at=utcnow(),
                    updated_at=utcnow(), last_error="webhook or event no longer exists"),
                    metric="cancelled"))
            elif hook.status != ACTIVE:
                self._settle(_Settled(self.queue.park(
                    row.id, token, HELD, attempts=row.attempts - 1, updated_at=utcnow()),
                    metric="held"))
            else:
                in_body = include_secret and hook.secret_in_payload
                key = (event.id, hook.secret if in_body else None)
                content = bodies.get(key)
                if content is None:  # one body per event (and secret), however many subscribers
                    content = bodies[key] = signing.body(
                        event.id, event.event, as_utc(event.occurred_at),  # type: ignore[arg-type]
                        event.data, secret=hook.secret, include_secret=in_body)
                self._ready.append((token, row, hook, event, content))
        self._work.set()
        return len(rows)

    # -- sending ---------------------------------------------------------------------------
    async def _send_loop(self, slot: int) -> None:
        """One of `concurrency` senders: take the next ready delivery, send it, repeat."""
        ready, inflight, room = self._ready, self._inflight, self._room
        # The claimer waits for room to claim at least half a batch (see `_claim_loop`).
        roomy = self.config.concurrency + self.config.claim_batch \
            - max(1, self.config.claim_batch // 2)
        while True:
            if not ready:
                self._work.clear()
                await self._work.wait()
                continue
            token, row, hook, event, content = ready.popleft()
            inflight[slot] = (token, row.id)
            try:
                await self._deliver(token, row, hook, event, content)
            finally:
                del inflight[slot]
                if len(inflight) + len(ready) <= roomy:
                    room.set()

    async def _deliver(self, token: str, row: Any, hook: WebhookRecord, event: Any,
                       content: bytes) -> None:
        cfg = self.config
        now = utcnow()  # signs the request and starts the attempt
        try:
            if hook.unreadable is not None:  # never sent unsigned: retried once the key is back
                result = AttemptResult(now, 0.0, error=f"cannot sign: {hook.unreadable}")
            else:
                headers = signing.headers(event.id, content, hook.signing_secrets(now),
                                          user_agent=cfg.user_agent, now=now)
                result = await send(self.session, hook.method, hook.url, content, headers,
                                    timeout=cfg.timeout, body_limit=cfg.response_body_bytes,
                                    allow_private=cfg.allow_private_networks, started_at=now)
        except Exception as exc:  # a bug must not strand the delivery until its lease ends
            log.exception("delivery_crashed", delivery=row.id)
            result = AttemptResult(utcnow(), 0.0, error=f"internal error: {type(exc).__name__}")
        metrics.ATTEMPT_SECONDS.observe(result.duration)
        self._settle(self.outcome(token, row, hook, result))

    def outcome(self, token: str, row: Any, hook: WebhookRecord, result: AttemptResult) -> _Settled:
        attempt = {"delivery_id": row.id, "attempt": row.attempts,
                   "started_at": result.started_at, "status_code": result.status_code,
                   "duration_ms": round(result.duration * 1000, 3),
                   "response_body": result.response_body, "error": result.error}
        if result.ok:  # the common case: completed in `flush` (stamped with its time)
            return _Settled(None, attempt, hook.id, "ok", "succeeded",
                            (token, row.id, result.status_code))
        now = self._tick()
        common = {"last_status_code": result.status_code, "last_error": result.error,
                  "updated_at": now}
        if result.gone:
            return _Settled(self.queue.park(row.id, token, HELD, **common), attempt, hook.id,
                            "gone", "held")
        delay = next_delay(self.config.retry_schedule, row.attempts, row.attempt_budget,
                           jitter=self.config.jitter, retry_after=result.retry_after)
        if delay is None:
            return _Settled(self.queue.failed(row.id, token, completed_at=now, **common), attempt,
                            hook.id, "final", "failed")
        when = now + timedelta(seconds=delay)
        return _Settled(self.queue.retry_at(row.id, token, when, **common), attempt, hook.id)

    # -- settling --------------------------------------------------------------------------
    def _tick(self) -> datetime:
        """The time stamped on outcomes, to the centisecond: outcomes settled together then
        share their values and become one UPDATE."""
        now = utcnow()
        return now.replace(microsecond=now.microsecond // 10_000 * 10_000)

    def _settle(self, settled: _Settled) -> None:
        self._results.append(settled)
        self._counts[settled.metric] += 1
        if settled.metric == "retry":
            self.wake.set()  # an immediate retry may be due now
        self._has_results.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._has_results.wait()
            if len(self._results) < FLUSH_MAX:
                await asyncio.sleep(FLUSH_EVERY)
            await self.flush()

    async def flush(self) -> None:
        batch, self._results = self._results, []
        self._has_results.clear()
        counts, self._counts = self._counts, defaultdict(int)
        for outcome, count in counts.items():  # counted once, whatever becomes of the batch
            metrics.delivered(outcome, count)
        if not batch:
            return
        now = utcnow()
        succeeded: dict[tuple[str, int | None], list[Any]] = defaultdict(list)
        others = []
        for s in batch:
            if s.done is not None:
                token, item_id, status_code = s.done
                succeeded[token, status_code].append(item_id)
            elif s.outcome is not None:
                others.append(s.outcome)
        try:
            async with self.queue.transaction(relaxed=True) as conn:  # lost: sent again
                for (token, status_code), ids in succeeded.items():
                    await self.queue.complete(conn, token, ids, completed_at=now,
                                              updated_at=now, last_status_code=status_code,
                                              last_error=None)
                await self.queue.settle(conn, others)
                attempts = [s.attempt for s in batch if s.attempt]
                if attempts:
                    await conn.execute(insert(delivery_attempts), attempts)
                await self._health(conn, batch)
        except Exception as exc:
            self._flush_failures += 1
            log.error("settle_failed", worker=self.name, count=len(batch), error=str(exc),
                      failures=self._flush_failures)
            if self._flush_failures < FLUSH_TRIES:
                await asyncio.sleep(self.config.poll_interval * self._flush_failures)
                self._results[:0] = batch
                self._has_results.set()
            # else give up on this batch: its leases run out and the deliveries are sent
            # again (at-least-once, never lost), and a poisoned batch cannot block the rest.
            return
        self._flush_failures = 0
        if any(s.verdict in ("gone", "final") for s in batch):
            self.wake.set()

    async def _health(self, conn: AsyncConnection, batch: list[_Settled]) -> None:
        trailing: dict[str, int] = defaultdict(int)
        reset: set[str] = set()
        gone: list[str] = []
        for s in batch:
            if s.webhook_id is None or s.verdict is None:
                continue
            if s.verdict == "ok":
                reset.add(s.webhook_id)
                trailing[s.webhook_id] = 0
            elif s.verdict == "final":
                trailing[s.webhook_id] += 1
            elif s.verdict == "gone":
                gone.append(s.webhook_id)
        w = webhooks.c
        by_count: dict[int, list[str]] = defaultdict(list)
        for webhook_id in reset:
            by_count[trailing[webhook_id]].append(webhook_id)
        for count, ids in by_count.items():  # nearly always one statement: "back to 0"
            await conn.execute(update(webhooks).where(w.id.in_(sorted(ids)),
                                                      w.consecutive_failures != count)
                               .values(consecutive_failures=count))
        failing = [i for i, n in trailing.items() if n and i not in reset]
        for webhook_id in failing:
            await conn.execute(update(webhooks).where(w.id == webhook_id).values(
                consecutive_failures=w.consecutive_failures + trailing[webhook_id]))
        if gone:
            await self.store.disable_in(conn, sorted(set(gone)), "the endpoint answered 410 Gone")
        limit = self.config.disable_after_failures
        if limit and failing:
            over = list((await conn.execute(select(w.id).where(
                and_(w.id.in_(failing), w.status == ACTIVE,
                     w.consecutive_failures >= limit)))).scalars())
            if over:
                log.warning("webhooks_disabled", ids=over, failures=limit)
                await self.store.disable_in(conn, over,
                                            f"{limit} consecutive deliveries failed")

    async def _shutdown(self, flusher: asyncio.Task[None]) -> None:
        """Stop: give unfinished deliveries back (due now, attempt returned), save outcomes."""
        unfinished = dict(self._inflight)
        waiting = [(token, row.id) for token, row, *_ in self._ready]
        self._ready.clear()
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        self._senders.clear()
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        try:
            await self.flush()
            by_token: dict[str, list[Any]] = defaultdict(list)
            for token, item_id in [*unfinished.values(), *waiting]:
                by_token[token].append(item_id)
            for token, ids in by_token.items():
                await self.queue.release(token, ids)
        except Exception as exc:
            log.warning("shutdown_release_failed", worker=self.name, error=str(exc))


__all__ = ["DISABLED", "DeliveryWorker"]
