"""The gateway's own identities: upsert (one transaction per batch), delete, get, search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.clock import utcnow
from servicegate.identity.model import Identity, address_rows, identity_row
from servicegate.identity.odata import DEFAULT_LIMITS, Limits
from servicegate.identity.properties import identity_properties
from servicegate.identity.search import IdentitySearch
from servicegate.storage.schema import identities, identity_addresses

_UPDATABLE = [c.name for c in identities.columns if c.name != "id"]


async def _render(_conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[bytes]:
    return [row[0].encode() for row in rows]


class IdentityStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def searcher(self, limits: Limits = DEFAULT_LIMITS) -> IdentitySearch:
        return IdentitySearch(self.engine, identity_properties(), [identities.c.doc], _render,
                              limits)

    def _upsert(self, rows: list[dict[str, Any]]) -> Any:
        insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
        stmt = insert(identities)
        return stmt.on_conflict_do_update(
            index_elements=[identities.c.id],
            set_={name: stmt.excluded[name] for name in _UPDATABLE},
        )

    async def upsert_many(self, batch: Sequence[Identity], conn: AsyncConnection | None = None
                          ) -> None:
        """Write a batch in one transaction: each identity with all its addresses, or none."""
        if not batch:
            return
        if conn is None:
            async with self.engine.begin() as own:
                await self.upsert_many(batch, own)
            return
        now = utcnow()
        rows = [identity_row(i, now) for i in batch]
        addresses = [a for i in batch for a in address_rows(i)]
        await conn.execute(self._upsert(rows), rows)
        ids = [i.id for i in batch]
        await conn.execute(delete(identity_addresses).where(identity_addresses.c.identity_id.in_(ids)))
        if addresses:
            await conn.execute(identity_addresses.insert(), addresses)

    async def put(self, identity: Identity) -> bool:
        """Create or replace; True when it was created."""
        async with self.engine.begin() as conn:
            existed = (await conn.execute(
                select(identities.c.id).where(identities.c.id == identity.id))).first()
            await self.upsert_many([identity], conn)
        return existed is None

    async def get(self, identity_id: str) -> bytes | None:
        async with self.engine.connect() as conn:
            doc = (await conn.execute(
                select(identities.c.doc).where(identities.c.id == identity_id))).scalar()
        return None if doc is None else doc.encode()

    async def delete(self, identity_id: str) -> bool:
        async with self.engine.begin() as conn:
            await conn.execute(delete(identity_addresses)
                               .where(identity_addresses.c.identity_id == identity_id))
            result = await conn.execute(delete(identities).where(identities.c.id == identity_id))
        return bool(result.rowcount)

    async def count(self) -> int:
        from sqlalchemy import func

        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(identities))).scalar_one())
