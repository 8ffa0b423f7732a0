"""Migrations and the client repository on both backends."""

import pytest
from sqlalchemy import inspect

from servicegate.auth import credentials
from servicegate.auth.clients import ClientExists, ClientStore, NotFound
from servicegate.storage.migrate import current_revision, head_revision, upgrade


async def test_migrations_reach_head_and_are_idempotent(engine):
    assert await current_revision(engine) == head_revision()
    await upgrade(engine)  # a second run changes nothing
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert {"clients", "api_keys", "alembic_version"} <= set(tables)


async def test_sqlite_runs_in_wal_with_foreign_keys(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    async with engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1


async def test_client_lifecycle(engine):
    store = ClientStore(engine)
    created = await store.create("acme", ["services", "webhooks"])
    assert created.api_key.startswith("sgk_") and created.client_secret.startswith("sgs_")
    found = await store.by_key_digest(credentials.key_digest(created.api_key))
    assert found and found.id == created.client.id and found.scopes == ("services", "webhooks")

    with pytest.raises(ClientExists):
        await store.create("acme", [])

    _, hashed = await store.secret_hash(created.client.id)
    assert hashed != created.client_secret and hashed.startswith("$argon2")
    assert credentials.verify_secret(hashed, created.client_secret)
    assert not credentials.verify_secret(hashed, created.client_secret + "x")

    _key2, api_key2 = await store.add_key("acme")
    assert len(await store.keys("acme")) == 2
    await store.revoke_key("acme", created.key_id)
    assert await store.by_key_digest(credentials.key_digest(created.api_key)) is None
    assert (await store.by_key_digest(credentials.key_digest(api_key2))).id == created.client.id
    with pytest.raises(NotFound):
        await store.revoke_key("acme", created.key_id)

    disabled = await store.update("acme", enabled=False)
    assert disabled.enabled is False
    await store.delete("acme")
    with pytest.raises(NotFound):
        await store.get("acme")
    assert await store.by_key_digest(credentials.key_digest(api_key2)) is None


async def test_only_digests_are_stored(engine):
    store = ClientStore(engine)
    created = await store.create("hashy", ["services"])
    async with engine.connect() as conn:
        dump = str((await conn.exec_driver_sql("SELECT * FROM api_keys")).all())
        dump += str((await conn.exec_driver_sql("SELECT * FROM clients")).all())
    assert created.api_key not in dump
    assert created.client_secret not in dump


async def test_malformed_scope_refused(engine):
    with pytest.raises(ValueError):
        await ClientStore(engine).create("x", ["bad scope"])
