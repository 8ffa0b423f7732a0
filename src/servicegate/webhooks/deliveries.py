"""The delivery log a client sees: listing, details with attempts, retry and recover."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.clock import as_utc, isoformat, utcnow
from servicegate.queue import DONE, FAILED, PENDING, LeaseQueue
from servicegate.storage.schema import deliveries, delivery_attempts, events, webhooks
from servicegate.webhooks.store import ACTIVE, CANCELLED, HELD

RETRYING = "retrying"  # a filter, not a stored status: pending after at least one failed attempt
STATUSES = (PENDING, RETRYING, DONE, FAILED, HELD, CANCELLED)


class NoSuchDelivery(Exception):
    pass


class CannotRetry(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _sending(row: Any, now: datetime) -> bool:
    """Held by a live lease: a worker is sending it right now."""
    until = as_utc(row.lease_until)
    return bool(row.status == PENDING and row.lease_token is not None and until and until > now)


def _retrying(row: Any) -> bool:
    return bool(row.status == PENDING and (row.last_status_code is not None
                                           or row.last_error is not None))


def _json(row: Any, now: datetime) -> dict[str, Any]:
    run_at = as_utc(row.run_at)
    sending = _sending(row, now)
    return {
        "id": row.id,
        "eventId": row.event_id,
        "event": row.event,
        "url": row.url,
        "status": row.status,
        "sending": bool(sending),
        "retrying": _retrying(row),
        "attempts": row.attempts,
        "nextAttemptAt": isoformat(run_at) if row.status == PENDING and not sending else None,
        "lastStatusCode": row.last_status_code,
        "lastError": row.last_error,
        "createdAt": isoformat(row.created_at),
        "completedAt": isoformat(row.completed_at),
    }


class DeliveryLog:
    def __init__(self, engine: AsyncEngine, queue: LeaseQueue) -> None:
        self.engine = engine
        self.queue = queue

    async def page(self, client_id: str, *, url: str | None = None, event: str | None = None,
                   status: str | None = None, since: datetime | None = None,
                   cursor: str | None = None, limit: int = 50) -> Page:
        d = deliveries.c
        query = select(deliveries).where(d.client_id == client_id)
        if url is not None:
            query = query.where(d.url == url)
        if event is not None:
            query = query.where(d.event == event)
        if status == RETRYING:
            query = query.where(d.status == PENDING, or_(d.last_status_code.is_not(None),
                                                         d.last_error.is_not(None)))
        elif status is not None:
            query = query.where(d.status == status)
        if since is not None:
            query = query.where(d.created_at >= since)
        if cursor is not None:
            query = query.where(d.id < cursor)
        query = query.order_by(d.id.desc()).limit(limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        now = utcnow()
        items = [_json(r, now) for r in rows[:limit]]
        return Page(items, rows[limit - 1].id if len(rows) > limit else None)

    async def detail(self, client_id: str, delivery_id: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(deliveries).where(
                deliveries.c.id == delivery_id, deliveries.c.client_id == client_id))).first()
            if row is None:
                raise NoSuchDelivery(delivery_id)
            event = (await conn.execute(select(events.c.data, events.c.occurred_at)
                                        .where(events.c.id == row.event_id))).first()
            tries = (await conn.execute(
                select(delivery_attempts).where(delivery_attempts.c.delivery_id == delivery_id)
                .order_by(delivery_attempts.c.id))).all()
        out = _json(row, utcnow())
        out["data"] = event.data if event else None
        out["occurredAt"] = isoformat(event.occurred_at) if event else None
        out["attemptLog"] = [
            {"attempt": a.attempt, "at": isoformat(a.started_at), "statusCode": a.status_code,
             "durationMs": a.duration_ms, "responseBody": a.response_body, "error": a.error}
            for a in tries
        ]
        return out

    async def retry(self, client_id: str, delivery_id: str) -> dict[str, Any]:
        """Send again now: one more attempt for a finished delivery, or move a waiting one up."""
        d = deliveries.c
        async with self.engine.begin() as conn:
            row = (await conn.execute(
                select(deliveries.c.id, d.status, d.lease_token, d.lease_until, d.attempts,
                       webhooks.c.status.label("webhook_status"))
                .select_from(deliveries.outerjoin(webhooks, webhooks.c.id == d.webhook_id))
                .where(d.id == delivery_id, d.client_id == client_id))).first()
            if row is None:
                raise NoSuchDelivery(delivery_id)
            if row.webhook_status is None:
                raise CannotRetry("this delivery's webhook is no longer registered")
            if row.webhook_status != ACTIVE:
                raise CannotRetry("this delivery's webhook is disabled; register it again "
                                  "to enable it")
            if _sending(row, utcnow()):
                raise CannotRetry("this delivery is being sent right now")
            if row.status == PENDING:
                # a delivery waiting for its next attempt is moved up; if that attempt fails
                # too, its schedule goes on
                await self.queue.resume(conn, d.id == delivery_id, from_status=PENDING,
                                        updated_at=utcnow())
            else:  # finished: one more attempt
                await self.queue.resume(conn, d.id == delivery_id,
                                        from_status=(DONE, FAILED, CANCELLED),
                                        attempt_budget=row.attempts + 1, completed_at=None,
                                        updated_at=utcnow())
        return await self.detail(client_id, delivery_id)

    async def recover(self, client_id: str, url: str, since: datetime) -> int:
        """Queue every failed delivery to this URL since a time for one more attempt."""
        d = deliveries.c
        async with self.engine.begin() as conn:
            hook = (await conn.execute(select(webhooks.c.status).where(
                webhooks.c.client_id == client_id, webhooks.c.url == url))).first()
            if hook is None:
                raise NoSuchDelivery(url)
            if hook.status != ACTIVE:
                raise CannotRetry("this webhook is disabled; register it again to enable it")
            return await self.queue.resume(
                conn, and_(d.client_id == client_id, d.url == url, d.created_at >= since),
                from_status=FAILED, attempt_budget=d.attempts + 1, completed_at=None,
                updated_at=utcnow())
