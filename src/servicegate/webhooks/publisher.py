"""The one way events enter: store an event and its deliveries in one transaction, then wake
the delivery workers of this process. `POST /events`, the gateway's own events, the `event`
definition action and job completion all call `publish` / `publish_many`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.clock import utcnow
from servicegate.queue import LeaseQueue
from servicegate.storage.schema import events, webhook_events, webhooks
from servicegate.webhooks import metrics
from servicegate.webhooks.catalog import EventCatalog
from servicegate.webhooks.ids import sortable_id
from servicegate.webhooks.store import DISABLED, HELD

log = structlog.get_logger("servicegate.events")
GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class NewEvent:
    event: str
    data: Any = None
    id: str | None = None
    occurred_at: datetime | None = None


class EventIdConflict(Exception):
    """A caller-supplied event id is already used by another publisher."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event id {event_id!r} is already used by another publisher")
        self.event_id = event_id


class EventPublisher:
    def __init__(self, engine: AsyncEngine, queue: LeaseQueue, catalog: EventCatalog,
                 attempt_budget: int) -> None:
        self.engine = engine
        self.queue = queue
        self.catalog = catalog
        self.attempt_budget = attempt_budget
        self.listeners: list[Callable[[], None]] = []

    async def publish(self, event: str, data: Any = None, *, id: str | None = None,
                      source: str = GATEWAY, owner: str | None = None,
                      occurred_at: datetime | None = None) -> str:
        """Publish one event; `owner` restricts delivery to that client's webhooks.

        Returns the event id. Raises ValueError for an event name not in the catalog."""
        ids = await self.publish_many([NewEvent(event, data, id, occurred_at)], source=source,
                                      owner=owner)
        return ids[0]

    async def publish_many(self, items: Sequence[NewEvent], *, source: str = GATEWAY,
                           owner: str | None = None) -> list[str]:
        """Publish events atomically; ids given again by the same source are not re-delivered."""
        prepared: dict[str, tuple[str, NewEvent]] = {}
        answer: list[str] = []
        for item in items:
            name = self.catalog.normalise(item.event)
            event_id = item.id or sortable_id("evt")
            answer.append(event_id)
            prepared.setdefault(event_id, (name, item))
        for attempt in (1, 2):
            try:
                async with self.queue.transaction() as conn:
                    pending = await self._store(conn, prepared, source, owner)
                break
            except IntegrityError:  # the same caller id raced in from a concurrent request
                if attempt == 2:
                    raise
        metrics.EVENTS_PUBLISHED.labels("gateway" if source == GATEWAY else "api").inc(
            len(prepared))
        if pending:
            self.wake()
        return answer

    async def stage(self, conn: AsyncConnection, items: Sequence[NewEvent], *,
                    source: str = GATEWAY, owner: str | None = None) -> int:
        """Store events and their deliveries in the caller's transaction (so an outcome and its
        event commit together); call `wake()` after the commit when this returned > 0."""
        prepared: dict[str, tuple[str, NewEvent]] = {}
        for item in items:
            prepared.setdefault(item.id or sortable_id("evt"),
                                (self.catalog.normalise(item.event), item))
        pending = await self._store(conn, prepared, source, owner)
        metrics.EVENTS_PUBLISHED.labels("gateway" if source == GATEWAY else "api").inc(
            len(prepared))
        return pending

    def wake(self) -> None:
        """Wake this process's delivery workers (new deliveries are due)."""
        for wake in self.listeners:
            wake()

    async def _store(self, conn: AsyncConnection, prepared: dict[str, tuple[str, NewEvent]],
                     source: str, owner: str | None) -> int:
        given = [i for i, (_, item) in prepared.items() if item.id is not None]
        fresh = dict(prepared)
        if given:
            for event_id, existing_source in (await conn.execute(
                select(events.c.id, events.c.source).where(events.c.id.in_(given))
            )).all():
                if existing_source != source:
                    raise EventIdConflict(event_id)
                fresh.pop(event_id, None)
        if not fresh:
            return 0
        now = utcnow()
        await conn.execute(insert(events), [
            {"id": event_id, "event": name, "source": source, "owner": owner, "data": item.data,
             "occurred_at": item.occurred_at or now, "created_at": now}
            for event_id, (name, item) in fresh.items()
        ])
        names = {name for name, _ in fresh.values()}
        query = (
            select(webhook_events.c.event, webhooks.c.id, webhooks.c.client_id, webhooks.c.url,
                   webhooks.c.status)
            .join(webhooks, webhooks.c.id == webhook_events.c.webhook_id)
            .where(webhook_events.c.event.in_(sorted(names)))
        )
        if owner is not None:
            query = query.where(webhooks.c.client_id == owner)
        subscribers: dict[str, list[Any]] = {}
        for row in (await conn.execute(query)).all():
            subscribers.setdefault(row.event, []).append(row)
        rows = []
        for event_id, (name, _) in fresh.items():
            for hook in subscribers.get(name, ()):
                row = {"id": sortable_id("dlv"), "event_id": event_id, "event": name,
                       "webhook_id": hook.id, "client_id": hook.client_id, "url": hook.url,
                       "attempt_budget": self.attempt_budget, "created_at": now,
                       "updated_at": now}
                if hook.status == DISABLED:
                    row["status"] = HELD
                rows.append(row)
        await self.queue.enqueue(conn, rows, run_at=now)
        return sum(1 for r in rows if "status" not in r)
