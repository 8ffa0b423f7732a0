"""What the runtime holds for identity search: the writable store and the configured searcher."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.config import IdentityConfig
from servicegate.identity.odata import Limits
from servicegate.identity.search import IdentitySearch
from servicegate.identity.store import IdentityStore
from servicegate.storage.engine import search_reads
from servicegate.storage.reads import Reads


@dataclass
class IdentityService:
    store: IdentityStore
    search: IdentitySearch
    reads: Reads
    external: bool = False

    @property
    def writable(self) -> bool:
        """False when searches read an external table (the admin API then refuses writes)."""
        return not self.external

    @classmethod
    def create(cls, config: IdentityConfig, engine: AsyncEngine, pool_size: int
               ) -> IdentityService:
        """`pool_size`: the gateway database's, which its search reads are sized from."""
        limits = Limits(max_length=config.max_filter_length, max_depth=config.max_depth,
                        max_terms=config.max_terms)
        store = IdentityStore(engine)
        if config.source == "sql" and config.sql is not None:
            from servicegate.identity.source_sql import ExternalSource, read_only_reads

            reads = read_only_reads(config.sql.url, config.sql.pool_size)
            return cls(store, ExternalSource(config.sql, reads).searcher(limits), reads, True)
        reads = search_reads(engine, pool_size)
        return cls(store, store.searcher(limits, reads), reads)

    async def close(self) -> None:
        await self.reads.close()
