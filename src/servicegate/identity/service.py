"""What the runtime holds for identity search: the writable store and the configured searcher."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.config import IdentityConfig
from servicegate.identity.odata import Limits
from servicegate.identity.search import IdentitySearch
from servicegate.identity.store import IdentityStore


@dataclass
class IdentityService:
    store: IdentityStore
    search: IdentitySearch
    external_engine: AsyncEngine | None = None

    @property
    def writable(self) -> bool:
        """False when searches read an external table (the admin API then refuses writes)."""
        return self.external_engine is None

    @classmethod
    def create(cls, config: IdentityConfig, engine: AsyncEngine) -> IdentityService:
        limits = Limits(max_length=config.max_filter_length, max_depth=config.max_depth,
                        max_terms=config.max_terms)
        store = IdentityStore(engine)
        if config.source == "sql" and config.sql is not None:
            from servicegate.identity.source_sql import ExternalSource, read_only_engine

            external = read_only_engine(config.sql.url, config.sql.pool_size)
            return cls(store, ExternalSource(config.sql, external).searcher(limits), external)
        return cls(store, store.searcher(limits))

    async def close(self) -> None:
        if self.external_engine is not None:
            await self.external_engine.dispose()
