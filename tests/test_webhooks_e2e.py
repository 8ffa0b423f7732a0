"""End to end through `servicegate serve` / `servicegate worker` subprocesses: a gateway killed
with -9 loses no accepted event; two gateways on one PostgreSQL database never send a delivery
twice at once and miss none; start/stop events are raised once, not once per worker process."""

import asyncio
import os
import signal
import subprocess
import time

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from tests.support.processes import SERVICEGATE, GatewayProcess, free_port, gateway_env
from tests.support.receivers import Receiver

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret"
FAST = {
    "SERVICEGATE_WEBHOOKS__RETRY_SCHEDULE": '["0s", "1s", "1s", "1s", "1s", "1s", "1s", "1s"]',
    "SERVICEGATE_WEBHOOKS__TIMEOUT": "1s",
    "SERVICEGATE_WEBHOOKS__LEASE": "2s",
    "SERVICEGATE_WEBHOOKS__POLL_INTERVAL": "100ms",
    "SERVICEGATE_WEBHOOKS__JITTER": "0",
}


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


def sqlite(tmp_path):
    return f"sqlite:///{tmp_path / 'gateway.db'}"


async def start(gp, *extra):
    return await asyncio.to_thread(gp.start, *extra)


async def stop(gp):
    await asyncio.to_thread(gp.stop)


async def setup_clients(gp, receiver, events=("payment",), path="/hook"):
    sub = await asyncio.to_thread(gp.create_client, "partner", "webhooks")
    pub = await asyncio.to_thread(gp.create_client, "backoffice", "events:publish")
    async with httpx.AsyncClient(base_url=gp.url, timeout=10) as http:
        r = await http.post("/webhooks", headers={"X-API-Key": sub["api_key"]}, json={
            "events": list(events), "url": receiver.url(path), "secret": SECRET})
        assert r.status_code == 200, r.text
    return sub, pub


async def publish(url, pub, batch):
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        r = await http.post("/events", headers={"X-API-Key": pub["api_key"]}, json=batch)
        assert r.status_code == 202, r.text
        return r.json()["ids"]


async def sent_once(database_url):
    """Deliveries that succeeded after exactly one claim."""
    from sqlalchemy import func, select

    from servicegate.storage.engine import create_engine
    from servicegate.storage.schema import deliveries

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(deliveries).where(
                deliveries.c.status == "succeeded", deliveries.c.attempts == 1))).scalar()
    finally:
        await engine.dispose()


async def settled_log(gp, sub, count, timeout=30.0):
    """The subscriber's delivery log once `count` deliveries are there, none of them pending."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=gp.url, timeout=10) as http:
        while True:
            log = (await http.get("/webhooks/deliveries", headers={
                "X-API-Key": sub["api_key"]})).json()["deliveries"]
            if len(log) >= count and all(d["status"] != "pending" for d in log):
                return log
            assert time.monotonic() < deadline, log
            await asyncio.sleep(0.1)


def delivered_ids(receiver, path="/hook", since=0):
    ids = set()
    for got in receiver.at(path)[since:]:
        payload = Webhook(SECRET.encode()).verify(got.body, got.headers)
        assert payload["id"] == got.headers["webhook-id"]
        ids.add(payload["id"])
    return ids


async def test_kill_9_loses_no_accepted_event(tmp_path, receiver):
    env = gateway_env(tmp_path, sqlite(tmp_path), **FAST)
    gp = GatewayProcess(tmp_path, env, free_port())
    await start(gp)
    try:
        _, pub = await setup_clients(gp, receiver)
        receiver.hang.add("/hook")  # the first deliveries are in flight when the gateway dies
        ids = await publish(gp.url, pub, [{"event": "payment", "data": {"n": i}} for i in range(60)])
        ids += await publish(gp.url, pub, [{"event": "payment", "data": {"n": 60 + i},
                                            "id": f"pay-{i}"} for i in range(40)])
        await receiver.wait_for(1, "/hook")
        gp.kill(signal.SIGKILL)
    finally:
        gp.kill(signal.SIGKILL)
    receiver.hang.clear()
    before = len(receiver.at("/hook"))
    assert before < 100
    await start(gp)
    try:
        deadline = time.monotonic() + 30
        while len(delivered_ids(receiver, since=before)) < 100 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert delivered_ids(receiver, since=before) == set(ids)
        data = sorted(orjson.loads(g.body)["data"]["n"] for g in receiver.at("/hook")[before:])
        assert set(data) == set(range(100))
    finally:
        await stop(gp)


@pytest.mark.postgres
async def test_two_gateways_on_postgres_deliver_each_event_once(tmp_path, receiver, postgres_url):
    from servicegate.storage.engine import create_engine
    from servicegate.storage.migrate import upgrade
    from tests.support.databases import truncate_all

    engine = create_engine(postgres_url)
    await upgrade(engine)
    await truncate_all(engine)
    await engine.dispose()
    env = gateway_env(tmp_path, postgres_url, **FAST,
                      SERVICEGATE_WEBHOOKS__CONCURRENCY="32", SERVICEGATE_WEBHOOKS__CLAIM_BATCH="20")
    a = GatewayProcess(tmp_path, env, free_port())
    b = GatewayProcess(tmp_path, env, free_port())
    await start(a)
    await start(b)
    try:
        _, pub = await setup_clients(a, receiver)
        batches = [[{"event": "payment", "data": {"n": n * 100 + i}} for i in range(100)]
                   for n in range(10)]
        results = await asyncio.gather(*(publish((a if n % 2 else b).url, pub, batch)
                                         for n, batch in enumerate(batches)))
        ids = {i for r in results for i in r}
        assert len(ids) == 1000
        deadline = time.monotonic() + 60
        while await sent_once(postgres_url) < 1000 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        # Every delivery succeeded after one claim: a second send would have needed a second
        # claim (claims count attempts), and a succeeded delivery is never claimed again.
        assert await sent_once(postgres_url) == 1000
        got = receiver.at("/hook")
        assert delivered_ids(receiver) == ids
        assert len(got) == 1000, "a delivery was sent twice"
        assert max(receiver.max_concurrent_per_id.values()) == 1
        sent_by = []
        for gp in (a, b):
            text = httpx.get(f"{gp.url}/metrics").text
            line = [x for x in text.splitlines()
                    if x.startswith('servicegate_webhook_deliveries_total{outcome="succeeded"}')]
            sent_by.append(float(line[0].split()[-1]) if line else 0.0)
        assert sum(sent_by) == 1000 and all(sent_by), sent_by
    finally:
        await stop(a)
        await stop(b)


async def test_start_and_stop_events_once_per_gateway_not_per_worker(tmp_path, receiver):
    env = gateway_env(tmp_path, sqlite(tmp_path), **FAST)
    gp = GatewayProcess(tmp_path, env, free_port())
    await start(gp)
    try:
        sub, _ = await setup_clients(gp, receiver, events=("appsrvstartup", "appsrvshutdown"),
                                     path="/life")
    finally:
        assert await asyncio.to_thread(gp.stop) == 0
    await start(gp, "--workers", "2")
    try:
        await receiver.wait_for(2, "/life")
        log = await settled_log(gp, sub, 2)
        assert [d["attempts"] for d in log] == [1, 1]  # two deliveries, each sent once
        events = sorted(orjson.loads(g.body)["event"] for g in receiver.at("/life"))
        assert events == ["appsrvshutdown", "appsrvstartup"]
        startup = next(orjson.loads(g.body) for g in receiver.at("/life")
                       if orjson.loads(g.body)["event"] == "appsrvstartup")
        assert startup["data"]["workers"] == 2
    finally:
        await stop(gp)


async def test_worker_command_delivers_when_the_gateway_does_not(tmp_path, receiver):
    env = gateway_env(tmp_path, sqlite(tmp_path), **FAST, SERVICEGATE_WEBHOOKS__WORKERS="0")
    gp = GatewayProcess(tmp_path, env, free_port())
    await start(gp)
    worker = None
    try:
        sub, pub = await setup_clients(gp, receiver, events=("payment", "procsrvstartup"))
        ids = await publish(gp.url, pub, [{"event": "payment", "data": i} for i in range(5)])
        log = open(tmp_path / "worker.log", "ab")
        worker = subprocess.Popen([SERVICEGATE, "worker"], cwd=tmp_path, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        await receiver.wait_for(6, "/hook")
        assert set(ids) < delivered_ids(receiver)
        kinds = [orjson.loads(g.body)["event"] for g in receiver.at("/hook")]
        assert kinds.count("procsrvstartup") == 1
        assert len(await settled_log(gp, sub, 6)) == 6
        # every delivery is settled, and the gateway itself sent none of them
        text = httpx.get(f"{gp.url}/metrics").text
        assert 'servicegate_webhook_deliveries_total{outcome="succeeded"}' not in text
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            assert worker.wait(timeout=30) == 0, (tmp_path / "worker.log").read_text()
        await stop(gp)
