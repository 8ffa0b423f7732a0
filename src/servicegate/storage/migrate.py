"""Run Alembic migrations on the gateway's database (`servicegate migrate`, and at serve start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.secretbox import SecretBox

_SCRIPTS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x5E71CE6A7E  # one migrator at a time across nodes


def _config(connection: Connection | None = None, secretbox: SecretBox | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    cfg.attributes["secretbox"] = secretbox
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection, secretbox: SecretBox | None) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    command.upgrade(_config(connection, secretbox), "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, secretbox: SecretBox | None = None) -> None:
    """Migrate to the current schema. `secretbox` seals secrets a migration finds in clear
    (one without it refuses to run on such a database)."""
    before = await current_revision(engine)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, secretbox)
    if engine.dialect.name == "sqlite" and before != head_revision():
        # Page images written before the migration (clear values it replaced) leave the
        # write-ahead log.
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
