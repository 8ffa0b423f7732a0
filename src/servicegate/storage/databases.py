"""Named databases for `sql` actions (`[databases.<name>]`): engines created on first use."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.config import NamedDatabase
from servicegate.storage.engine import create_engine


class NamedDatabases:
    def __init__(self, configured: dict[str, NamedDatabase]) -> None:
        self.configured = configured
        self._engines: dict[str, AsyncEngine] = {}

    def names(self) -> list[str]:
        return sorted(self.configured)

    def engine(self, name: str) -> AsyncEngine:
        engine = self._engines.get(name)
        if engine is None:
            config = self.configured[name]
            engine = create_engine(config.url, pool_size=config.pool_size, private=False)
            self._engines[name] = engine
        return engine

    async def close(self) -> None:
        engines, self._engines = self._engines, {}
        for engine in engines.values():
            await engine.dispose()
