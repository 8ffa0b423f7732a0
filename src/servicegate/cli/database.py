"""Opening the gateway database from the CLI, migrated to the current schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.cli.common import fail
from servicegate.config import Settings
from servicegate.secretbox import SecretBox, SecretKeyError
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import upgrade


@asynccontextmanager
async def migrated_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    try:
        box = SecretBox.load(settings.secrets.key_file)
    except SecretKeyError as exc:
        raise fail(str(exc)) from None
    engine = create_engine(settings.database.url, pool_size=2)
    try:
        await upgrade(engine, box)
        yield engine
    finally:
        await engine.dispose()
