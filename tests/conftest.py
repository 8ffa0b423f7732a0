"""Shared fixtures: backends (SQLite file, PostgreSQL database), in-process gateway, clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from servicegate.app import create_app
from servicegate.config import Settings
from servicegate.runtime import Runtime
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import upgrade
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    truncate_all,
)

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend in turn: a fresh SQLite file, or the run's PostgreSQL database (emptied)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each backend in turn, with nothing in it, not even the schema (migration tests): a new
    SQLite file, or a PostgreSQL database of its own, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """`database_url` migrated and emptied, for tests that open engines of their own (one per
    hypothesis example, on its own event loop)."""
    async def prepare() -> None:
        engine = create_engine(database_url)
        await upgrade(engine)
        if engine.dialect.name == "postgresql":
            await truncate_all(engine)
        await engine.dispose()

    asyncio.run(prepare())
    return database_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gateway.db'}"


def make_settings(tmp_path: Path, database_url: str, **sections: dict) -> Settings:
    base: dict = {
        "database": {"url": database_url},
        "auth": {"signing_key_path": str(tmp_path / "keys")},
        "secrets": {"key_file": str(tmp_path / "secrets.key")},
        "definitions": {"dir": str(tmp_path / "definitions"), "watch": False},
        "webhooks": {"allow_private_networks": True},
        "logging": {"format": "console"},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return Settings(**base)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator:
    eng = create_engine(database_url)
    await upgrade(eng)
    if eng.dialect.name == "postgresql":
        await truncate_all(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@dataclass
class Gateway:
    """An in-process gateway with an httpx client bound to it."""

    runtime: Runtime
    client: httpx.AsyncClient
    admin_key: str

    async def new_client(self, name: str, *scopes: str) -> dict[str, str]:
        created = await self.runtime.clients.create(name, list(scopes))
        return {
            "client_id": created.client.id,
            "client_secret": created.client_secret,
            "api_key": created.api_key,
        }


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
async def gateway(settings: Settings, engine) -> AsyncIterator[Gateway]:
    runtime = await Runtime.start(settings, engine=engine)
    app = create_app(settings, runtime=runtime)
    app.state.runtime = runtime
    admin = await runtime.clients.create("admin", ["admin"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        try:
            yield Gateway(runtime, client, admin.api_key)
        finally:
            await runtime.stop_background()
            await runtime.http.close()
            if runtime._public_http is not None:
                await runtime._public_http.close()


@pytest.fixture
async def dgw(tmp_path: Path) -> AsyncIterator:
    """A gateway (SQLite) serving definitions the test writes; `dgw.define(file, yaml)`."""
    from tests.support.definitions import settings_for, start_gateway

    gw, client = await start_gateway(settings_for(tmp_path))
    try:
        yield gw
    finally:
        await client.aclose()
        await gw.runtime.stop()


@pytest.fixture
async def upstream() -> AsyncIterator:
    """A real HTTP upstream on a free port, recording what it received."""
    from tests.support.upstream import start_upstream

    server = await start_upstream()
    try:
        yield server
    finally:
        await server.stop()
