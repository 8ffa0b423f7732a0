"""What the runtime holds for identity search: the writable store and the configured searcher."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.config import IdentityConfig
from servicegate.identity.odata import Limits
from servicegate.identity.search import IdentitySearch
from servicegate.identity.source_sql import ExternalSource
from servicegate.identity.store import IdentityStore
from servicegate.storage.engine import create_read_only_engine


@dataclass
class IdentityService:
    store: IdentityStore
    search: IdentitySearch
    # the external source's own read-only engine (None: searches read the gateway's tables)
    external: AsyncEngine | None = None

    @property
    def writable(self) -> bool:
        """False when searches read an external table (the admin API then refuses writes)."""
        return self.external is None

    @classmethod
    def create(cls, config: IdentityConfig, engine: AsyncEngine) -> IdentityService:
        limits = Limits(max_length=config.max_filter_length, max_depth=config.max_depth,
                        max_terms=config.max_terms)
        store = IdentityStore(engine)
        if config.source == "sql" and config.sql is not None:
            external = create_read_only_engine(config.sql.url, pool_size=config.sql.pool_size)
            return cls(store, ExternalSource(config.sql, external).searcher(limits), external)
        return cls(store, store.searcher(limits))

    async def close(self) -> None:
        if self.external is not None:
            await self.external.dispose()
