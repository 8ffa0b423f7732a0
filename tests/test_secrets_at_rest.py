"""Webhook secrets sealed at rest: not in the database file's bytes, files readable by their
owner only, the key file, the migration that seals secrets stored in clear, and
`servicegate secrets rotate` with deliveries still verifying."""

import asyncio
import base64
import json
import os
import stat
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert, select, text
from standardwebhooks import Webhook

from servicegate.clock import utcnow
from servicegate.secretbox import ENV, SecretBox, SecretKeyError
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import _config, upgrade
from servicegate.storage.schema import secret_context, webhooks
from tests.support.processes import SERVICEGATE, gateway_env, run_command
from tests.support.receivers import Receiver
from tests.test_webhook_delivery import key, only_delivery, publish, register

PLAIN = "clear-text-secret-7f3a9c"
WHSEC = "whsec_" + base64.b64encode(b"k" * 24 + b"find-me-bytes").decode()


@pytest.fixture
def settings(tmp_path, database_url):
    from tests.conftest import make_settings

    return make_settings(tmp_path, database_url, webhooks={
        "retry_schedule": ["0s", "100ms", "100ms"], "timeout": "1s", "lease": "5s",
        "poll_interval": "50ms", "jitter": 0, "disable_after_failures": 0})


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def hooks(gateway):
    gateway.runtime.start_workers()
    gateway.sub = await gateway.new_client("partner", "webhooks")
    gateway.pub = await gateway.new_client("backoffice", "events:publish")
    yield gateway


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def database_files(url: str) -> list[Path]:
    path = Path(url.removeprefix("sqlite:///"))
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


async def stored(gateway) -> list:
    async with gateway.runtime.engine.connect() as conn:
        return (await conn.execute(select(webhooks))).all()


async def test_the_database_holds_sealed_secrets_only(hooks, receiver):
    await register(hooks, receiver.url("/a"), secret=PLAIN)
    await register(hooks, receiver.url("/b"), secret=WHSEC)
    await register(hooks, receiver.url("/a"), secret=PLAIN + "-new")  # the old one kept too
    await publish(hooks)
    await receiver.wait_for(1, "/a")
    await receiver.wait_for(1, "/b")
    for row in await stored(hooks):
        for value in (row.secret_sealed, row.previous_secret_sealed):
            if value is not None:
                assert value.startswith("sg1:") and "secret" not in value
    rows = {r.url: r for r in await stored(hooks)}
    assert rows[receiver.url("/a")].previous_secret_sealed is not None
    if hooks.runtime.engine.dialect.name != "sqlite":
        return
    files = database_files(hooks.runtime.settings.database.url)
    assert any(p.name.endswith("-wal") for p in files)  # the log is checked, not just the file
    for path in files:
        raw = path.read_bytes()
        for secret in (PLAIN, PLAIN + "-new", WHSEC, WHSEC.removeprefix("whsec_")):
            assert secret.encode() not in raw, (path.name, secret)
        assert b"find-me-bytes" not in raw


async def test_sqlite_files_are_created_for_their_owner_only(tmp_path):
    old_umask = os.umask(0o022)
    try:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        engine = create_engine(url)
        await upgrade(engine)
        async with engine.connect() as conn:  # a connection open: -wal and -shm exist
            await conn.execute(text("SELECT 1"))
            files = database_files(url)
            assert len(files) == 3
            assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        await engine.dispose()
        # a database created before (0644) is made its owner's only
        old = tmp_path / "old.db"
        old.touch(mode=0o644)
        engine = create_engine(f"sqlite:///{old}")
        await engine.dispose()
        assert mode(old) == 0o600
        # a named database of a `sql` action is another application's file: left alone
        theirs = tmp_path / "theirs.db"
        theirs.touch(mode=0o644)
        engine = create_engine(f"sqlite:///{theirs}", private=False)
        await engine.dispose()
        assert mode(theirs) == 0o644
    finally:
        os.umask(old_umask)


def test_key_file_is_created_0600_and_keeps_old_keys(tmp_path):
    path = tmp_path / "conf" / "secrets.key"
    box = SecretBox.load(path, environ={})
    assert mode(path) == 0o600
    sealed = box.seal("s", "ctx")
    assert box.open(sealed, "ctx") == "s"
    with pytest.raises(SecretKeyError, match="does not open"):
        box.open(sealed, "another row")
    from servicegate.secretbox import add_key

    new, kept = add_key(path)
    assert kept == [box.current] and mode(path) == 0o600
    again = SecretBox.load(path, environ={})
    assert again.current == new and again.open(sealed, "ctx") == "s"
    assert again.key_id(again.seal("s", "ctx")) == new
    assert json.loads(path.read_text())["current"] == new


def test_key_from_the_environment(tmp_path):
    k1, k2 = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    old = SecretBox.load(tmp_path / "unused", environ={ENV: f"k1:{k1}"})
    sealed = old.seal("value", "c")
    both = SecretBox.load(tmp_path / "unused", environ={ENV: f"k2:{k2}, k1:{k1}"})
    assert both.current == "k2" and both.open(sealed, "c") == "value"
    assert not (tmp_path / "unused").exists()
    for bad, message in ((f"k1:{k1[:-4]}", "32 bytes"), ("k1:not base64!", "base64"),
                         (" , ", "no key")):
        with pytest.raises(SecretKeyError, match=message):
            SecretBox.load(tmp_path / "unused", environ={ENV: bad})


async def test_a_secret_whose_key_is_gone_fails_its_deliveries_instead_of_sending_unsigned(
        hooks, receiver, tmp_path):
    await register(hooks, receiver.url("/k"), secret=PLAIN)
    other = SecretBox.load(tmp_path / "other.key", environ={})
    hooks.runtime.webhooks.store.box = other
    await publish(hooks)
    failed = await only_delivery(hooks, "failed")
    assert failed["lastError"].startswith("cannot sign: the secret is sealed with key")
    assert PLAIN not in str(failed)
    assert receiver.at("/k") == []
    r = await hooks.client.get("/admin/webhooks", headers={"X-API-Key": hooks.admin_key})
    assert r.json()["webHooks"][0]["hasSecret"] is True


async def test_migration_seals_secrets_stored_in_clear(fresh_url, tmp_path):
    engine = create_engine(fresh_url)
    box = SecretBox.load(tmp_path / "secrets.key", environ={})
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_config(c), "0006_partial_job_indexes"))
        now = utcnow()
        async with engine.begin() as conn:
            for n, secret in enumerate((PLAIN, None)):
                await conn.execute(text(
                    "INSERT INTO webhooks (id, client_id, url, method, secret, status, "
                    "consecutive_failures, created_at, updated_at) VALUES (:id, 'c', :url, "
                    "'POST', :secret, 'active', 0, :now, :now)"),
                    {"id": f"wh_{n}", "url": f"http://127.0.0.1:9/{n}", "secret": secret,
                     "now": now})
        with pytest.raises(RuntimeError, match="servicegate migrate"):
            await upgrade(engine)  # no key ring: clear secrets are not left as they are
        await upgrade(engine, box)
        async with engine.connect() as conn:
            rows = {r.id: r for r in (await conn.execute(select(webhooks))).all()}
        assert box.open(rows["wh_0"].secret_sealed, secret_context("wh_0")) == PLAIN
        assert rows["wh_1"].secret_sealed is None
        assert rows["wh_0"].secret_in_payload is True and rows["wh_1"].secret_in_payload is True
        assert "secret" not in rows["wh_0"]._mapping
        if engine.dialect.name == "sqlite":
            await engine.dispose()  # the raw bytes once every connection is closed
            for path in database_files(fresh_url):
                assert PLAIN.encode() not in path.read_bytes(), path.name
            # a webhook registered after the migration is sealed at insert
        async with engine.begin() as conn:
            await conn.execute(insert(webhooks).values(
                id="wh_2", client_id="c", url="http://127.0.0.1:9/2", method="POST",
                status="active", consecutive_failures=0, created_at=now, updated_at=now))
            assert (await conn.execute(select(webhooks.c.secret_in_payload).where(
                webhooks.c.id == "wh_2"))).scalar_one() is True
    finally:
        await engine.dispose()


async def test_secrets_rotate_command_reseals_and_deliveries_still_verify(
        hooks, receiver, tmp_path):
    await register(hooks, receiver.url("/r"), secret=PLAIN)
    await register(hooks, receiver.url("/w"), secret=WHSEC)
    key_file = hooks.runtime.settings.secrets.key_file
    before = SecretBox.load(key_file, environ={})
    env = gateway_env(tmp_path, hooks.runtime.settings.database.url)
    done = await asyncio.to_thread(run_command, [SERVICEGATE, "secrets", "rotate"],
                                   cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "2 stored secrets sealed again" in done.stdout
    assert PLAIN not in done.stdout + done.stderr
    after = SecretBox.load(key_file, environ={})
    assert after.current != before.current and set(after.key_ids) == {before.current,
                                                                       after.current}
    assert mode(key_file) == 0o600
    for row in await stored(hooks):
        assert after.key_id(row.secret_sealed) == after.current
    # the running gateway meets the new key id and reads it from the file
    await publish(hooks, data={"after": "rotation"})
    (plain,) = await receiver.wait_for(1, "/r")
    (whsec,) = await receiver.wait_for(1, "/w")
    assert Webhook(PLAIN.encode()).verify(plain.body, plain.headers)["data"] == {
        "after": "rotation"}
    Webhook(WHSEC).verify(whsec.body, whsec.headers)
    # nothing left to re-seal: a second run with --reseal-only changes nothing
    done = await asyncio.to_thread(run_command, [SERVICEGATE, "secrets", "rotate",
                                                 "--reseal-only"], cwd=tmp_path, env=env,
                                   timeout=60)
    assert done.returncode == 0 and "0 stored secrets sealed again" in done.stdout, done.stderr
    r = await hooks.client.get("/webhooks", headers=key(hooks.sub))
    assert r.json()["count"] == 2
