"""The one way events enter: store an event and its deliveries in one transaction, then wake
the delivery workers of this process. `POST /events`, the gateway's own events, the `event`
definition action and job completion all call `publish` / `publish_many`.

Concurrent calls are group-committed (`storage/group_commit.py`): calls arriving together are
stored in one transaction, and each returns only after that commit. Each call stays atomic and
keeps its own answer: a call whose id belongs to another source gets EventIdConflict without
touching the others, and a group that fails as a whole (e.g. an id raced in from another
process) is stored again one call at a time (by GroupCommit)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.clock import utcnow
from servicegate.queue import LeaseQueue
from servicegate.storage.group_commit import GroupCommit, default_writers
from servicegate.storage.schema import events, webhook_events, webhooks
from servicegate.webhooks import metrics
from servicegate.webhooks.catalog import EventCatalog
from servicegate.webhooks.errors import EventIdConflict
from servicegate.webhooks.ids import sortable_id
from servicegate.webhooks.store import DISABLED, HELD

GATEWAY = "gateway"
MAX_GROUP_EVENTS = 2000


@dataclass(frozen=True, slots=True)
class NewEvent:
    event: str
    data: Any = None
    id: str | None = None
    occurred_at: datetime | None = None


@dataclass(slots=True)
class _Call:
    """One publish call waiting for its group: events by id -> (catalog name, event)."""
    prepared: dict[str, tuple[str, NewEvent]]
    source: str
    owner: str | None
    fresh: list[str] = field(default_factory=list)


class EventPublisher:
    def __init__(self, engine: AsyncEngine, queue: LeaseQueue, catalog: EventCatalog,
                 attempt_budget: int) -> None:
        self.engine = engine
        self.queue = queue
        self.catalog = catalog
        self.attempt_budget = attempt_budget
        self.listeners: list[Callable[[], None]] = []
        self._group: GroupCommit[_Call, None] = GroupCommit(
            self._write, writers=default_writers(engine), max_weight=MAX_GROUP_EVENTS,
            weight=lambda call: len(call.prepared))

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
        call, ids = self._call(items, source, owner)
        await self._group.submit(call)
        return ids

    async def stage(self, conn: AsyncConnection, items: Sequence[NewEvent], *,
                    source: str = GATEWAY, owner: str | None = None) -> int:
        """Store events and their deliveries in the caller's transaction (so an outcome and its
        event commit together); call `wake()` after the commit when this returned > 0."""
        call, _ = self._call(items, source, owner)
        outcomes, pending = await self._store(conn, [call])
        if outcomes[0] is not None:
            raise outcomes[0]
        self._count(call)
        return pending

    def _call(self, items: Sequence[NewEvent], source: str,
              owner: str | None) -> tuple[_Call, list[str]]:
        """The call to store, and each item's event id (new ones made here), in order."""
        prepared: dict[str, tuple[str, NewEvent]] = {}
        ids: list[str] = []
        for item in items:
            name = self.catalog.normalise(item.event)
            event_id = item.id or sortable_id("evt")
            ids.append(event_id)
            prepared.setdefault(event_id, (name, item))
        return _Call(prepared, source, owner), ids

    def wake(self) -> None:
        """Wake this process's delivery workers (new deliveries are due)."""
        for wake in self.listeners:
            wake()

    @staticmethod
    def _count(call: _Call) -> None:
        metrics.EVENTS_PUBLISHED.labels("gateway" if call.source == GATEWAY else "api").inc(
            len(call.prepared))

    async def _write(self, calls: list[_Call]) -> list[BaseException | None]:
        """Store a group of calls in one transaction (GroupCommit stores the calls of a group
        that fails as a whole again one by one)."""
        async with self.queue.transaction() as conn:
            outcomes, pending = await self._store(conn, calls)
        for call, outcome in zip(calls, outcomes, strict=True):
            if outcome is None:
                self._count(call)
        if pending:
            self.wake()
        return outcomes

    async def _store(self, conn: AsyncConnection,
                     calls: list[_Call]) -> tuple[list[BaseException | None], int]:
        """Store the calls' events and deliveries in `conn`, in call order, exactly as if each
        call ran alone one after the other: returns one outcome per call (None, or the
        EventIdConflict it gets - then nothing of that call is stored) and the number of
        deliveries due now."""
        outcomes = _claim_ids(calls, await _claimed_ids(conn, calls))
        stored = [call for call, outcome in zip(calls, outcomes, strict=True)
                  if outcome is None and call.fresh]
        if not stored:
            return outcomes, 0
        now = utcnow()
        await conn.execute(insert(events), _event_rows(stored, now))
        rows = self._delivery_rows(stored, await _subscribers(conn, stored), now)
        await self.queue.enqueue(conn, rows, run_at=now)
        return outcomes, sum(1 for r in rows if "status" not in r)

    def _delivery_rows(self, stored: list[_Call], subscribers: dict[str, list[Any]],
                       now: datetime) -> list[dict[str, Any]]:
        """A delivery per fresh event and subscribed webhook (of the call's owner, when it has
        one); held at once for a disabled webhook."""
        rows = []
        for call in stored:
            for event_id in call.fresh:
                name = call.prepared[event_id][0]
                for hook in subscribers.get(name, ()):
                    if call.owner is not None and hook.client_id != call.owner:
                        continue
                    row = {"id": sortable_id("dlv"), "event_id": event_id, "event": name,
                           "webhook_id": hook.id, "client_id": hook.client_id, "url": hook.url,
                           "attempt_budget": self.attempt_budget, "created_at": now,
                           "updated_at": now}
                    if hook.status == DISABLED:
                        row["status"] = HELD
                    rows.append(row)
        return rows


async def _claimed_ids(conn: AsyncConnection, calls: list[_Call]) -> dict[str, str]:
    """The callers' own event ids already stored: id -> the source that stored it."""
    given = sorted({i for call in calls for i, (_, item) in call.prepared.items()
                    if item.id is not None})
    if not given:
        return {}
    return {row.id: row.source for row in (await conn.execute(
        select(events.c.id, events.c.source).where(events.c.id.in_(given)))).all()}


def _claim_ids(calls: list[_Call], claimed: dict[str, str]) -> list[BaseException | None]:
    """Each call's outcome, in order: EventIdConflict when one of its ids is another source's
    (claimed before, or by an earlier call of the group); otherwise None, and `call.fresh`
    lists its ids not stored yet (an id given again by its own source is not re-delivered)."""
    outcomes: list[BaseException | None] = []
    for call in calls:
        conflict = next((i for i in call.prepared if claimed.get(i, call.source) != call.source),
                        None)
        if conflict is not None:
            outcomes.append(EventIdConflict(conflict))
            continue
        outcomes.append(None)
        call.fresh = [i for i in call.prepared if i not in claimed]
        claimed.update((i, call.source) for i in call.fresh)
    return outcomes


def _event_rows(stored: list[_Call], now: datetime) -> list[dict[str, Any]]:
    return [{"id": event_id, "event": name, "source": call.source, "owner": call.owner,
             "data": item.data, "occurred_at": item.occurred_at or now, "created_at": now}
            for call in stored for event_id in call.fresh
            for name, item in (call.prepared[event_id],)]


async def _subscribers(conn: AsyncConnection, stored: list[_Call]) -> dict[str, list[Any]]:
    """The webhooks subscribed to the stored events, by event name (only the owners' when
    every call has one)."""
    names = {call.prepared[i][0] for call in stored for i in call.fresh}
    query = (
        select(webhook_events.c.event, webhooks.c.id, webhooks.c.client_id, webhooks.c.url,
               webhooks.c.status)
        .join(webhooks, webhooks.c.id == webhook_events.c.webhook_id)
        .where(webhook_events.c.event.in_(sorted(names)))
    )
    owners = {call.owner for call in stored}
    if None not in owners:
        query = query.where(webhooks.c.client_id.in_(sorted(owners)))
    subscribers: dict[str, list[Any]] = {}
    for row in (await conn.execute(query)).all():
        subscribers.setdefault(row.event, []).append(row)
    return subscribers
