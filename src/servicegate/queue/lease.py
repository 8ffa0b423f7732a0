"""Claim-and-lease over a table: the queue webhook deliveries (and async jobs) run on.

A work item is a row of a table that carries `queue_columns()`:

- `status`: `pending` items are eligible; `succeeded` / `failed` are final; a user of the queue may
  park items under statuses of its own (e.g. `held`), which claims ignore.
- `run_at`: when a pending item is due (claims leave it alone).
- `lease_token`: set by a claim; every later transition must present it, so a worker whose lease
  expired and was re-claimed elsewhere cannot overwrite the new owner's outcome.
- `lease_until`: set by a claim to the end of its lease. A pending item is claimable when it is
  due and not leased (no token, or its lease has run out), so an item whose worker died becomes
  claimable again by itself when its lease runs out (no sweeper).
- `attempts`: how many times the item has been claimed (a release gives the attempt back).

A claim writes only columns no index covers, so on PostgreSQL it is a HOT update (no index
entries; the tables leave room in each page for it, `fillfactor`); the due index covers pending
items only (`WHERE status = 'pending'`), so settling an item adds no entry to it either.

Claims are one `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING` statement:
on PostgreSQL concurrent claimers skip each other's rows; on SQLite the statement takes the
database's single write lock up front, so there is exactly one claimer per database file at a
time. Either way two processes never hold the same item at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.clock import as_utc, utcnow
from servicegate.storage.id_lists import among
from servicegate.storage.queue_columns import DONE, FAILED, PENDING, PENDING_ONLY

_CLAIMING = "SELECT set_config('enable_sort', 'off', true)"
_CLAIMING_RELAXED = ("SELECT set_config('enable_sort', 'off', true), "
                     "set_config('synchronous_commit', 'off', true)")


@dataclass(frozen=True, slots=True)
class Claim:
    """Items claimed together, owned by one lease token until `lease_until`."""

    token: str
    lease_until: datetime
    rows: list[Row[Any]]
    loaded: Any = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    due: int
    scheduled: int
    leased: int
    oldest_due_seconds: float


class LeaseQueue:
    """Enqueue, claim with a lease, complete, retry at, fail, release, park and resume."""

    def __init__(self, engine: AsyncEngine, table: Table) -> None:
        for name in ("id", "status", "run_at", "lease_token", "lease_until", "attempts"):
            if name not in table.c:
                raise ValueError(f"table {table.name} lacks the queue column {name!r}")
        self.engine = engine
        self.table = table
        self.dialect = engine.dialect.name if engine is not None else "sqlite"
        # SQLite has one writer per file: queue writers of this process take turns here instead
        # of colliding in SQLite's busy-wait (which sleeps in milliseconds).
        self._turns = asyncio.Lock() if engine is not None and engine.dialect.name == "sqlite" \
            else None

    @contextlib.asynccontextmanager
    async def transaction(self, *, relaxed: bool = False,
                          claiming: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction for queue work (enqueue, settle, hold, resume).

        `relaxed`: for writes whose loss in a database-server crash only means doing the work
        again (claims, delivery outcomes: at-least-once either way). On PostgreSQL the commit
        then returns without waiting for the WAL flush (`synchronous_commit = off`: a crash of
        the database server may lose the last few hundred milliseconds of such commits; a
        crash of the gateway loses nothing). Never for accepting work.

        `claiming` (PostgreSQL): no sorting in this transaction, so a claim walks the due index
        in order and stops at its limit whatever the table's statistics say. (Statistics that
        see few pending items, e.g. taken before a burst or never, otherwise make the planner
        fetch and sort every due item for each claim: a backlog then drains in quadratic
        time.)"""
        async with self._turn(), self.engine.begin() as conn:
            if self.dialect == "postgresql":
                if claiming:
                    await conn.exec_driver_sql(_CLAIMING_RELAXED if relaxed else _CLAIMING)
                elif relaxed:
                    await conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            yield conn

    def _turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._turns or contextlib.nullcontext()

    # -- producing -------------------------------------------------------------------------
    async def enqueue(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]],
                      *, run_at: datetime | None = None) -> None:
        """Insert items (in the caller's transaction); status/run_at/attempts get defaults."""
        if not rows:
            return
        when = run_at or utcnow()
        values = [{"status": PENDING, "run_at": when, "attempts": 0, "lease_token": None, **r}
                  for r in rows]
        await conn.execute(self.table.insert(), values)

    # -- consuming -------------------------------------------------------------------------
    async def claim(self, limit: int, lease: float, *, now: datetime | None = None,
                    columns: Sequence[str] | None = None,
                    load: Callable[[AsyncConnection, list[Row[Any]]], Awaitable[Any]] | None = None,
                    ) -> Claim:
        """Take up to `limit` due items for `lease` seconds (oldest due first).

        The rows carry `columns` (default: all; naming fewer saves decoding on hot paths).
        `load(conn, rows)` runs in the same transaction (e.g. to fetch what the items refer
        to); its result is `Claim.loaded`."""
        now = now or utcnow()
        token = secrets.token_hex(16)
        until = now + timedelta(seconds=lease)
        stmt = self._claim_statement(tuple(columns or ()))
        params = {"q_now": now, "q_limit": limit, "q_token": token, "q_until": until}
        async with self.transaction(relaxed=True, claiming=True) as conn:
            rows = list((await conn.execute(stmt, params)).all())
            loaded = await load(conn, rows) if load is not None and rows else None
        return Claim(token, until, rows, loaded)

    def _pending(self) -> Any:
        return literal_column(PENDING_ONLY)

    def _unleased(self, now: Any) -> Any:
        """Not held by a live lease. (A token without `lease_until` was set by a claim of a
        version before `lease_until`, which moved `run_at` to the lease's end instead.)"""
        c = self.table.c
        return or_(c.lease_token.is_(None), c.lease_until.is_(None), c.lease_until <= now)

    @functools.lru_cache(maxsize=8)  # noqa: B019 - a handful of shapes per queue, queues live long
    def _claim_statement(self, columns: tuple[str, ...]) -> Any:
        c = self.table.c
        now = bindparam("q_now")
        due = (
            select(c.id)
            .where(self._pending(), c.run_at <= now, self._unleased(now))
            .order_by(c.run_at, c.id)
            .limit(bindparam("q_limit"))
            .with_for_update(skip_locked=True)
        )
        return (
            update(self.table)
            .where(c.id.in_(due))
            .values(lease_token=bindparam("q_token"), lease_until=bindparam("q_until"),
                    attempts=c.attempts + 1)
            .returning(*(c[n] for n in columns) if columns else c)
        )

    @functools.lru_cache(maxsize=64)  # noqa: B019
    def _settle_statement(self, names: tuple[str, ...]) -> Any:
        c = self.table.c
        return (
            update(self.table)
            .where(among(c.id, "q_ids", self.dialect), c.lease_token == bindparam("q_token"))
            .values({n: bindparam("v_" + n) for n in names})
        )

    @functools.lru_cache(maxsize=64)  # noqa: B019
    def _settle_each_statement(self, names: tuple[str, ...]) -> Any:
        c = self.table.c
        return (
            update(self.table)
            .where(c.id == bindparam("q_id"), c.lease_token == bindparam("q_token"))
            .values({n: bindparam("v_" + n) for n in names})
        )

    async def settle(self, conn: AsyncConnection, outcomes: Iterable[Mapping[str, Any]]) -> None:
        """Apply many transitions, each guarded by its lease token (in the caller's transaction).

        Each outcome is `{"id", "token", "status", **other columns}`; build them with `done()`,
        `retry_at()`, `failed()` or `park()`. Outcomes with the same token and the same values
        become one `UPDATE ... WHERE id IN (...)`, so a batch of successes costs one statement;
        outcomes carrying values of their own (JSON documents such as results) are sent as one
        executemany per set of columns.
        """
        groups: dict[tuple[Any, ...], list[Any]] = {}
        values_of: dict[tuple[Any, ...], dict[str, Any]] = {}
        each: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for outcome in outcomes:
            values = {k: v for k, v in outcome.items() if k not in ("id", "token")}
            key = (outcome["token"], *sorted(values.items()))
            try:
                hash(key)
            except TypeError:  # unhashable values (JSON documents): a row of its own
                names = tuple(sorted(values))
                each.setdefault(names, []).append(
                    {"q_id": outcome["id"], "q_token": outcome["token"],
                     **{"v_" + n: values[n] for n in names}})
                continue
            groups.setdefault(key, []).append(outcome["id"])
            values_of[key] = values
        for key, ids in groups.items():
            await self._settle_group(conn, key[0], ids, values_of[key])
        for names, rows in each.items():
            await conn.execute(self._settle_each_statement(names), rows)

    async def complete(self, conn: AsyncConnection, token: str, ids: Sequence[Any],
                       **values: Any) -> None:
        """`settle` of many `done()` outcomes held under one token and sharing their values: a
        hot path's shortcut past building and grouping one outcome per item."""
        await self._settle_group(conn, token, ids, {"status": DONE, "lease_token": None,
                                                    **values})

    async def _settle_group(self, conn: AsyncConnection, token: str, ids: Sequence[Any],
                            values: Mapping[str, Any]) -> None:
        stmt = self._settle_statement(tuple(values))
        params = {"v_" + n: v for n, v in values.items()}
        for start in range(0, len(ids), 500):
            await conn.execute(stmt, {**params, "q_ids": list(ids[start:start + 500]),
                                      "q_token": token})

    @staticmethod
    def done(item_id: Any, token: str, **values: Any) -> dict[str, Any]:
        return {"id": item_id, "token": token, "status": DONE, "lease_token": None, **values}

    @staticmethod
    def failed(item_id: Any, token: str, **values: Any) -> dict[str, Any]:
        return {"id": item_id, "token": token, "status": FAILED, "lease_token": None, **values}

    @staticmethod
    def retry_at(item_id: Any, token: str, when: datetime, **values: Any) -> dict[str, Any]:
        return {"id": item_id, "token": token, "status": PENDING, "run_at": when,
                "lease_token": None, **values}

    @staticmethod
    def park(item_id: Any, token: str, status: str, **values: Any) -> dict[str, Any]:
        """Set an item aside under a status of the caller's own; `resume()` brings it back."""
        return {"id": item_id, "token": token, "status": status, "lease_token": None, **values}

    async def release(self, token: str, ids: Sequence[Any]) -> None:
        """Give claimed items back unattempted (graceful shutdown): claimable again at once (in
        their place by due time), attempt returned."""
        if not ids:
            return
        c = self.table.c
        async with self.transaction() as conn:
            await conn.execute(
                update(self.table)
                .where(c.id.in_(list(ids)), c.lease_token == token, c.status == PENDING)
                .values(lease_token=None, lease_until=None, attempts=c.attempts - 1)
            )

    async def extend(self, token: str, ids: Sequence[Any], lease: float) -> int:
        """Renew the lease of items still held under `token` (long-running work heartbeats)."""
        if not ids:
            return 0
        c = self.table.c
        async with self.transaction() as conn:
            result = await conn.execute(
                update(self.table)
                .where(c.id.in_(list(ids)), c.lease_token == token, c.status == PENDING)
                .values(lease_until=utcnow() + timedelta(seconds=lease))
            )
        return int(result.rowcount or 0)

    async def resume(self, conn: AsyncConnection, where: Any, *, from_status: str | Sequence[str],
                     **values: Any) -> int:
        """Make parked or final items pending and due now (replay, re-enable)."""
        c = self.table.c
        statuses = [from_status] if isinstance(from_status, str) else list(from_status)
        result = await conn.execute(
            update(self.table)
            .where(where, c.status.in_(statuses))
            .values(status=PENDING, run_at=utcnow(), lease_token=None, lease_until=None,
                    **values)
        )
        return int(result.rowcount or 0)

    async def hold(self, conn: AsyncConnection, where: Any, status: str) -> int:
        """Park pending items that are not leased right now (a leased one parks when it settles)."""
        c = self.table.c
        result = await conn.execute(
            update(self.table)
            .where(where, c.status == PENDING, c.lease_token.is_(None))
            .values(status=status)
        )
        return int(result.rowcount or 0)

    # -- observing -------------------------------------------------------------------------
    async def stats(self, *, now: datetime | None = None) -> QueueStats:
        now = now or utcnow()
        c = self.table.c
        free = self._unleased(now)
        is_due = and_(c.run_at <= now, free)
        stmt = select(
            func.count().filter(is_due),
            func.count().filter(and_(c.run_at > now, free)),
            func.count().filter(and_(c.lease_token.is_not(None), c.lease_until > now)),
            func.min(c.run_at).filter(is_due),
        ).where(self._pending())
        async with self.engine.connect() as conn:
            due, scheduled, held, oldest = (await conn.execute(stmt)).one()
        oldest_at = as_utc(oldest)
        age = max(0.0, (now - oldest_at).total_seconds()) if oldest_at else 0.0
        return QueueStats(int(due or 0), int(scheduled or 0), int(held or 0), age)
