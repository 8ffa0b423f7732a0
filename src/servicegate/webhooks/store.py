"""Webhook registrations: per-client CRUD, merging, enabling and disabling; their secrets,
sealed at rest, with the previous secret kept for a grace period after a change."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.clock import as_utc, isoformat, utcnow
from servicegate.queue import PENDING, LeaseQueue
from servicegate.secretbox import SecretBox, SecretKeyError
from servicegate.storage.id_lists import among
from servicegate.storage.schema import deliveries, secret_context, webhook_events, webhooks
from servicegate.webhooks.ids import sortable_id

ACTIVE = "active"
DISABLED = "disabled"
HELD = "held"            # delivery status while its webhook is disabled
CANCELLED = "cancelled"  # delivery status once its webhook or event was unregistered

UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    id: str
    client_id: str
    url: str
    method: str
    # not in the repr: a record may reach a log line or a traceback's locals
    secret: str | None = field(repr=False)
    status: str
    disabled_reason: str | None
    consecutive_failures: int
    events: tuple[str, ...]
    created_at: datetime | None = None
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_until: datetime | None = None
    secret_in_payload: bool = True
    # why a stored secret could not be opened (a key missing from the ring): deliveries fail
    # with this rather than go out unsigned
    unreadable: str | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a delivery sent now: the current one, then the previous one
        while its grace period lasts."""
        out = [self.secret] if self.secret else []
        if self.previous_secret and self.previous_secret_until is not None \
                and now < self.previous_secret_until:
            out.append(self.previous_secret)
        return out

    def to_json(self) -> dict[str, Any]:
        """What the owner sees (GET /webhooks): never a secret."""
        out: dict[str, Any] = {"events": list(self.events), "url": self.url,
                               "method": self.method, "status": self.status,
                               "secretInPayload": self.secret_in_payload}
        if self.status == DISABLED:
            out["disabledReason"] = self.disabled_reason
        if self.previous_secret is not None and self.previous_secret_until is not None \
                and self.previous_secret_until > utcnow():
            out["previousSecretExpiresAt"] = isoformat(self.previous_secret_until)
        return out

    def to_admin_json(self) -> dict[str, Any]:
        return {"id": self.id, "clientId": self.client_id, **self.to_json(),
                "hasSecret": self.secret is not None or self.unreadable is not None,
                "consecutiveFailures": self.consecutive_failures,
                "createdAt": isoformat(self.created_at)}


class NoSuchWebhook(Exception):
    pass


class WebhookStore:
    def __init__(self, engine: AsyncEngine, queue: LeaseQueue, box: SecretBox, *,
                 secret_grace: float = 86400.0) -> None:
        self.engine = engine
        self.queue = queue
        self.box = box
        self.secret_grace = secret_grace

    def _record(self, r: Any, events: tuple[str, ...] = (),
                created_at: datetime | None = None) -> WebhookRecord:
        """A row as a record, its secrets opened."""
        context = secret_context(r.id)
        secret = previous = unreadable = None
        if r.secret_sealed is not None:
            try:
                secret = self.box.open(r.secret_sealed, context)
            except SecretKeyError as exc:
                unreadable = str(exc)
        if r.previous_secret_sealed is not None:
            try:
                previous = self.box.open(r.previous_secret_sealed, context)
            except SecretKeyError:
                previous = None  # only the current secret signs
        return WebhookRecord(r.id, r.client_id, r.url, r.method, secret, r.status,
                             r.disabled_reason, r.consecutive_failures, events, created_at,
                             previous, as_utc(r.previous_secret_until), r.secret_in_payload,
                             unreadable)

    # -- reading ---------------------------------------------------------------------------
    async def _records(self, conn: AsyncConnection, where: Any) -> list[WebhookRecord]:
        rows = (await conn.execute(select(webhooks).where(where).order_by(webhooks.c.created_at,
                                                                          webhooks.c.id))).all()
        if not rows:
            return []
        ids = [r.id for r in rows]
        names: dict[str, list[str]] = {i: [] for i in ids}
        for wid, event in (await conn.execute(
            select(webhook_events.c.webhook_id, webhook_events.c.event)
            .where(webhook_events.c.webhook_id.in_(ids))
        )).all():
            names[wid].append(event)
        return [self._record(r, tuple(sorted(names[r.id])), as_utc(r.created_at)) for r in rows]

    async def list_for(self, client_id: str) -> list[WebhookRecord]:
        async with self.engine.connect() as conn:
            return await self._records(conn, webhooks.c.client_id == client_id)

    async def list_all(self) -> list[WebhookRecord]:
        async with self.engine.connect() as conn:
            return await self._records(conn, webhooks.c.id.is_not(None))

    async def find(self, client_id: str, url: str) -> WebhookRecord | None:
        async with self.engine.connect() as conn:
            found = await self._records(
                conn, and_(webhooks.c.client_id == client_id, webhooks.c.url == url))
        return found[0] if found else None

    async def get(self, webhook_id: str) -> WebhookRecord:
        async with self.engine.connect() as conn:
            found = await self._records(conn, webhooks.c.id == webhook_id)
        if not found:
            raise NoSuchWebhook(webhook_id)
        return found[0]

    async def many(self, ids: Iterable[str],
                   conn: AsyncConnection | None = None) -> dict[str, WebhookRecord]:
        """Webhooks by id, without their event lists (what a delivery needs)."""
        wanted = list(set(ids))
        if not wanted:
            return {}
        query = select(webhooks).where(among(webhooks.c.id, "webhook_ids",
                                             self.engine.dialect.name, wanted))
        if conn is None:
            async with self.engine.connect() as own:
                rows = (await own.execute(query)).all()
        else:
            rows = (await conn.execute(query)).all()
        return {r.id: self._record(r) for r in rows}

    # -- registering -----------------------------------------------------------------------
    async def register(self, client_id: str, url: str, events: Sequence[str], *,
                       method: str | None = None, secret: Any = UNSET,
                       secret_in_payload: bool | None = None) -> WebhookRecord:
        """Create, or merge into the caller's webhook for this URL (enabling it again). A new
        secret replaces the current one, which keeps signing for `secret_grace`; `None` removes
        both."""
        for attempt in (1, 2):
            try:
                async with self.engine.begin() as conn:
                    await self._register(conn, client_id, url, events, method, secret,
                                         secret_in_payload)
                break
            except IntegrityError:  # a concurrent registration of the same URL won; merge
                if attempt == 2:
                    raise
        found = await self.find(client_id, url)
        assert found is not None
        return found

    async def _register(self, conn: AsyncConnection, client_id: str, url: str,
                        events: Sequence[str], method: str | None, secret: Any,
                        secret_in_payload: bool | None) -> None:
        now = utcnow()
        row = (await conn.execute(
            select(webhooks.c.id, webhooks.c.status, webhooks.c.secret_sealed)
            .where(webhooks.c.client_id == client_id, webhooks.c.url == url)
        )).first()
        if row is None:
            webhook_id = sortable_id("wh")
            sealed = None if secret is UNSET or secret is None else self.box.seal(
                secret, secret_context(webhook_id))
            await conn.execute(insert(webhooks).values(
                id=webhook_id, client_id=client_id, url=url, method=method or "POST",
                secret_sealed=sealed, status=ACTIVE,
                secret_in_payload=True if secret_in_payload is None else secret_in_payload,
                disabled_reason=None, consecutive_failures=0, created_at=now, updated_at=now))
            have: set[str] = set()
        else:
            webhook_id = row.id
            values: dict[str, Any] = {"status": ACTIVE, "disabled_reason": None,
                                      "consecutive_failures": 0, "updated_at": now}
            if method is not None:
                values["method"] = method
            if secret is not UNSET:
                values.update(self._new_secret(webhook_id, row.secret_sealed, secret, now))
            if secret_in_payload is not None:
                values["secret_in_payload"] = secret_in_payload
            await conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(values))
            if row.status == DISABLED:
                await self._resume_held(conn, webhook_id)
            have = set((await conn.execute(
                select(webhook_events.c.event).where(webhook_events.c.webhook_id == webhook_id)
            )).scalars())
        new = [{"webhook_id": webhook_id, "event": e} for e in dict.fromkeys(events) if e not in have]
        if new:
            await conn.execute(insert(webhook_events), new)

    def _new_secret(self, webhook_id: str, sealed: str | None, secret: str | None,
                    now: datetime) -> dict[str, Any]:
        """The column values for a change of secret: the current one moves, still sealed, to
        `previous_secret_sealed` and signs until the grace period ends. Registering the current
        secret again changes nothing (a retried registration starts no rotation)."""
        if secret is None:
            return {"secret_sealed": None, "previous_secret_sealed": None,
                    "previous_secret_until": None}
        context = secret_context(webhook_id)
        if sealed is not None:
            try:
                same = hmac.compare_digest(self.box.open(sealed, context).encode(),
                                           secret.encode())
            except SecretKeyError:
                same = False
            if same:
                return {}
        values: dict[str, Any] = {"secret_sealed": self.box.seal(secret, context)}
        if sealed is not None and self.secret_grace > 0:
            values.update(previous_secret_sealed=sealed,
                          previous_secret_until=now + timedelta(seconds=self.secret_grace))
        else:
            values.update(previous_secret_sealed=None, previous_secret_until=None)
        return values

    async def unregister(self, client_id: str, url: str,
                         events: Sequence[str] | None) -> WebhookRecord:
        """Remove some or all events; without events left the webhook goes. Pending deliveries
        of what was removed are cancelled."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(
                select(webhooks).where(webhooks.c.client_id == client_id, webhooks.c.url == url)
            )).first()
            if row is None:
                raise NoSuchWebhook(url)
            ew = webhook_events.c
            if events is None:
                await conn.execute(delete(webhook_events).where(ew.webhook_id == row.id))
            else:
                await conn.execute(delete(webhook_events).where(ew.webhook_id == row.id,
                                                                ew.event.in_(list(events))))
            remaining = sorted((await conn.execute(
                select(ew.event).where(ew.webhook_id == row.id))).scalars())
            d = deliveries.c
            gone = d.webhook_id == row.id
            if remaining:
                gone = and_(gone, d.event.not_in(remaining))
            now = utcnow()
            waiting = or_(and_(d.status == PENDING, d.lease_token.is_(None)), d.status == HELD)
            await conn.execute(update(deliveries).where(gone, waiting)
                               .values(status=CANCELLED, completed_at=now, updated_at=now))
            if not remaining:
                await conn.execute(delete(webhooks).where(webhooks.c.id == row.id))
        return WebhookRecord(row.id, row.client_id, row.url, row.method, None,
                             row.status, row.disabled_reason, row.consecutive_failures,
                             tuple(remaining), secret_in_payload=row.secret_in_payload)

    # -- health ----------------------------------------------------------------------------
    async def enable(self, webhook_id: str) -> WebhookRecord:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(webhooks).where(webhooks.c.id == webhook_id)
                .values(status=ACTIVE, disabled_reason=None, consecutive_failures=0,
                        updated_at=utcnow()))
            if not result.rowcount:
                raise NoSuchWebhook(webhook_id)
            await self._resume_held(conn, webhook_id)
        return await self.get(webhook_id)

    async def disable(self, webhook_id: str, reason: str) -> WebhookRecord:
        async with self.engine.begin() as conn:
            if not await self.disable_in(conn, [webhook_id], reason):
                raise NoSuchWebhook(webhook_id)
        return await self.get(webhook_id)

    async def disable_in(self, conn: AsyncConnection, ids: Sequence[str], reason: str) -> int:
        """Disable webhooks and park their waiting deliveries (in the caller's transaction)."""
        if not ids:
            return 0
        result = await conn.execute(
            update(webhooks).where(webhooks.c.id.in_(list(ids)))
            .values(status=DISABLED, disabled_reason=reason[:500], updated_at=utcnow()))
        await self.queue.hold(conn, deliveries.c.webhook_id.in_(list(ids)), HELD)
        return int(result.rowcount or 0)

    # -- secrets ---------------------------------------------------------------------------
    async def reseal(self, batch: int = 500) -> tuple[int, list[str]]:
        """Seal every stored secret under the ring's current key; return (values resealed,
        why others could not be opened). A value changed meanwhile (a registration) is left
        to its new writer."""
        w = webhooks.c
        resealed, failures = 0, []
        after = ""
        sqlite = self.engine.dialect.name == "sqlite"
        while True:
            async with self.engine.begin() as conn:
                if sqlite:  # values under a retired key do not stay behind in freed space
                    await conn.exec_driver_sql("PRAGMA secure_delete = ON")
                rows = (await conn.execute(
                    select(w.id, w.secret_sealed, w.previous_secret_sealed)
                    .where(w.id > after, or_(w.secret_sealed.is_not(None),
                                             w.previous_secret_sealed.is_not(None)))
                    .order_by(w.id).limit(batch))).all()
                if not rows:
                    return resealed, failures
                after = rows[-1].id
                for row in rows:
                    context = secret_context(row.id)
                    for column in (w.secret_sealed, w.previous_secret_sealed):
                        sealed = getattr(row, column.name)
                        if sealed is None:
                            continue
                        try:
                            if self.box.is_current(sealed):
                                continue
                            fresh = self.box.seal(self.box.open(sealed, context), context)
                        except SecretKeyError as exc:
                            failures.append(f"webhook {row.id}: {exc}")
                            continue
                        result = await conn.execute(update(webhooks).where(
                            w.id == row.id, column == sealed).values({column.name: fresh}))
                        resealed += int(result.rowcount or 0)

    async def drop_expired_secrets(self, now: datetime) -> int:
        """Forget previous secrets whose grace period is over."""
        w = webhooks.c
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(webhooks).where(w.previous_secret_until < now)
                .values(previous_secret_sealed=None, previous_secret_until=None))
        return int(result.rowcount or 0)

    async def _resume_held(self, conn: AsyncConnection, webhook_id: str) -> None:
        await self.queue.resume(conn, deliveries.c.webhook_id == webhook_id, from_status=HELD,
                                updated_at=utcnow())


__all__ = ["ACTIVE", "CANCELLED", "DISABLED", "HELD", "PENDING", "UNSET", "NoSuchWebhook",
           "WebhookRecord", "WebhookStore"]
