"""Everything webhooks needs at run time, built once per process from the settings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.clock import utcnow
from servicegate.config import WebhooksConfig
from servicegate.queue import LeaseQueue, sampling
from servicegate.secretbox import SecretBox
from servicegate.storage.schema import deliveries
from servicegate.webhooks import metrics, retention, signing
from servicegate.webhooks.catalog import EventCatalog
from servicegate.webhooks.deliveries import DeliveryLog
from servicegate.webhooks.ids import sortable_id
from servicegate.webhooks.publisher import EventPublisher
from servicegate.webhooks.sender import AttemptResult, send
from servicegate.webhooks.store import WebhookRecord, WebhookStore
from servicegate.webhooks.targets import resolver
from servicegate.webhooks.worker import DeliveryWorker

log = structlog.get_logger("servicegate.webhooks")
Spawn = Callable[[str, Coroutine[Any, Any, None]], None]


class WebhookService:
    def __init__(self, engine: AsyncEngine, config: WebhooksConfig, box: SecretBox) -> None:
        self.engine = engine
        self.config = config
        self.catalog = EventCatalog(config.custom_events)
        self.queue = LeaseQueue(engine, deliveries)
        self.store = WebhookStore(engine, self.queue, box, secret_grace=config.secret_grace)
        self.log = DeliveryLog(engine, self.queue)
        self.publisher = EventPublisher(engine, self.queue, self.catalog,
                                        len(config.retry_schedule))
        self.workers: list[DeliveryWorker] = []
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """A pooled client for deliveries only, its resolver guarding against SSRF."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=max(self.config.concurrency * max(self.config.workers, 1), 100),
                limit_per_host=0, ttl_dns_cache=30, enable_cleanup_closed=True,
                resolver=resolver(self.config.allow_private_networks))
            # No `skip_auto_headers`: every delivery request names its own User-Agent (so
            # aiohttp adds none), and skipping costs a copy of the headers per request.
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    def start_workers(self, spawn: Spawn, *, workers: int | None = None,
                      housekeeping: bool = True) -> None:
        """Delivery workers (and, once per process, pruning and queue metrics)."""
        count = self.config.workers if workers is None else workers
        for n in range(count):
            worker = DeliveryWorker(f"webhooks-{n}", self.engine, self.queue, self.store,
                                    self.config, self.session)
            self.workers.append(worker)
            self.publisher.listeners.append(worker.notify)
            spawn(worker.name, worker.run())
        if housekeeping:
            spawn("webhooks-retention", self._prune_loop())
            spawn("webhooks-metrics", sampling.sample_forever(
                self.queue, metrics.QUEUE_DEPTH, metrics.OLDEST_DUE, name="deliveries"))

    async def close(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(ValueError):
                self.publisher.listeners.remove(worker.notify)
        self.workers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def test_delivery(self, hook: WebhookRecord, event: str) -> AttemptResult:
        """Send a one-off signed test delivery to a webhook now (not queued, not retried)."""
        message_id = sortable_id("msg_test")
        now = utcnow()
        if hook.unreadable is not None:
            return AttemptResult(now, 0.0, error=f"cannot sign: {hook.unreadable}")
        content = signing.body(message_id, event, now, {"test": True}, secret=hook.secret,
                               include_secret=self.config.include_secret_in_payload
                               and hook.secret_in_payload)
        headers = signing.headers(message_id, content, hook.signing_secrets(now),
                                  user_agent=self.config.user_agent, now=now)
        return await send(self.session, hook.method, hook.url, content, headers,
                          timeout=self.config.timeout, body_limit=self.config.response_body_bytes,
                          allow_private=self.config.allow_private_networks)

    async def _prune_loop(self) -> None:
        while True:
            try:
                pruned = await retention.prune(self.engine, self.config)
                await self.store.drop_expired_secrets(utcnow())
                if pruned.deliveries or pruned.events:
                    log.info("pruned", deliveries=pruned.deliveries, events=pruned.events)
            except Exception as exc:
                log.warning("prune_failed", error=str(exc))
            await asyncio.sleep(self.config.prune_interval)

    async def sample_metrics(self) -> None:
        """Queue depth and the age of the oldest due item, for /metrics."""
        await sampling.sample(self.queue, metrics.QUEUE_DEPTH, metrics.OLDEST_DUE)
