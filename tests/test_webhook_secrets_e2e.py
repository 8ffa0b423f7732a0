"""End to end through a `servicegate serve` subprocess: a generated `whsec_` secret verifies
with the default constructors of `svix` and `standardwebhooks`, a partner's rotation signs with
both secrets, and `servicegate secrets rotate` on the running gateway changes nothing for the
receiver; the database files never hold a secret."""

import asyncio
from pathlib import Path

import httpx
import pytest
import standardwebhooks
from svix.webhooks import Webhook as SvixWebhook

from tests.support.processes import GatewayProcess, free_port, gateway_env
from tests.support.receivers import Receiver

pytestmark = pytest.mark.e2e
FAST = {"SERVICEGATE_WEBHOOKS__POLL_INTERVAL": "100ms", "SERVICEGATE_WEBHOOKS__TIMEOUT": "2s",
        "SERVICEGATE_WEBHOOKS__LEASE": "5s"}


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


def both_verify(secret: str, got) -> None:
    SvixWebhook(secret).verify(got.body, got.headers)
    assert standardwebhooks.Webhook(secret).verify(got.body, got.headers)["id"] == \
        got.headers["webhook-id"]


async def test_generated_secret_rotation_and_key_rotation_through_serve(tmp_path, receiver):
    database = tmp_path / "gateway.db"
    env = gateway_env(tmp_path, f"sqlite:///{database}", **FAST)
    gp = GatewayProcess(tmp_path, env, free_port())
    await asyncio.to_thread(gp.start)
    try:
        sub = await asyncio.to_thread(gp.create_client, "partner", "webhooks")
        pub = await asyncio.to_thread(gp.create_client, "backoffice", "events:publish")
        async with httpx.AsyncClient(base_url=gp.url, timeout=10) as http:
            async def register(**body):
                r = await http.post("/webhooks", headers={"X-API-Key": sub["api_key"]}, json={
                    "events": ["payment"], "url": receiver.url("/e2e"), **body})
                assert r.status_code == 200, r.text
                return r.json()

            async def publish(n):
                r = await http.post("/events", headers={"X-API-Key": pub["api_key"]},
                                    json={"event": "payment", "data": {"n": n}})
                assert r.status_code == 202, r.text
                return (await receiver.wait_for(n, "/e2e"))[n - 1]

            first = (await register(generateSecret=True, secretInPayload=False))["secret"]
            got = await publish(1)
            both_verify(first, got)
            assert b"secret" not in got.body

            second = (await register(generateSecret=True))["secret"]
            got = await publish(2)
            assert len(got.headers["webhook-signature"].split()) == 2
            both_verify(first, got)   # the receiver has not switched yet
            both_verify(second, got)  # ... or has

            done = await asyncio.to_thread(gp.cli, "secrets", "rotate")
            assert "2 stored secrets sealed again" in done.stdout, done.stdout + done.stderr
            got = await publish(3)
            both_verify(first, got)
            both_verify(second, got)

            listed = (await http.get("/webhooks", headers={"X-API-Key": sub["api_key"]})).text
            assert first not in listed and second not in listed
    finally:
        await asyncio.to_thread(gp.stop)
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm"), gp.log_path):
        if path.exists():
            raw = path.read_bytes()
            for secret in (first, second):
                assert secret.encode() not in raw, path.name
                assert secret.removeprefix("whsec_").encode() not in raw, path.name
