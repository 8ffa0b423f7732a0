"""Asynchronous jobs end to end through `servicegate serve` subprocesses and a real slow
upstream: submit, poll, cancel, owner isolation, idempotency key, `jobcomplete` at a real
receiver (both backends); a gateway killed with -9 mid-job runs it after restart; SIGTERM lets
a running job finish."""

import asyncio
import signal
import time

import httpx
import orjson
import pytest

from tests.support.processes import GatewayProcess, free_port, gateway_env
from tests.support.receivers import Receiver
from tests.support.upstream import start_upstream

pytestmark = pytest.mark.e2e
FAST = {
    "SERVICEGATE_JOBS__LEASE": "2s",
    "SERVICEGATE_JOBS__POLL_INTERVAL": "100ms",
    "SERVICEGATE_JOBS__CONCURRENCY": "1",
    "SERVICEGATE_JOBS__SHUTDOWN_GRACE": "5s",
    "SERVICEGATE_WEBHOOKS__POLL_INTERVAL": "100ms",
}
SLOW = """name: export
methods: [POST]
timeout: 20s
input:
  schema: {type: object, required: [seconds], properties: {seconds: {type: number}}}
action:
  type: http
  url: "UPSTREAM/slow"
  method: GET
  query: {s: "{{ body.seconds }}"}
  body: none
"""


@pytest.fixture
async def upstream():
    server = await start_upstream()
    yield server
    await server.stop()


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


async def prepared(database_url):
    if database_url.startswith("postgresql"):
        from servicegate.storage.engine import create_engine
        from servicegate.storage.migrate import upgrade
        from tests.support.databases import truncate_all

        engine = create_engine(database_url)
        await upgrade(engine)
        await truncate_all(engine)
        await engine.dispose()
    return database_url


async def gateway(tmp_path, database_url, upstream):
    (tmp_path / "definitions").mkdir(exist_ok=True)
    (tmp_path / "definitions" / "export.yaml").write_text(SLOW.replace("UPSTREAM", upstream.url))
    env = gateway_env(tmp_path, await prepared(database_url), **FAST)
    gp = GatewayProcess(tmp_path, env, free_port())
    await asyncio.to_thread(gp.start)
    return gp


async def poll(http, job_id, key, *statuses, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        r = await http.get(f"/services/jobs/{job_id}", headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
        if r.json()["status"] in statuses:
            return r
        assert time.monotonic() < deadline, r.json()
        await asyncio.sleep(0.1)


async def test_async_flow(tmp_path, database_url, upstream, receiver):
    gp = await gateway(tmp_path, database_url, upstream)
    try:
        partner = await asyncio.to_thread(gp.create_client, "partner", "services", "webhooks")
        other = await asyncio.to_thread(gp.create_client, "other", "services")
        mine = {"X-API-Key": partner["api_key"]}
        async with httpx.AsyncClient(base_url=gp.url, timeout=10) as http:
            r = await http.post("/webhooks", headers=mine, json={
                "events": ["jobcomplete"], "url": receiver.url("/jobs")})
            assert r.status_code == 200, r.text
            keyed = {**mine, "Idempotency-Key": "export-2026-11"}
            r = await http.post("/services/export?async=true", headers=keyed, json={"seconds": 1})
            assert r.status_code == 202, r.text
            job_id = r.json()["jobId"]
            assert r.headers["location"] == f"{gp.url}/services/jobs/{job_id}"
            assert int(r.headers["retry-after"]) >= 1
            again = await http.post("/services/export?async=true", headers=keyed,
                                    json={"seconds": 1})
            assert again.status_code == 202 and again.json()["jobId"] == job_id
            r = await http.post("/services/export?async=true", headers=keyed, json={"seconds": 2})
            assert r.status_code == 422
            bad = await http.post("/services/export?async=true", headers=mine, json={})
            assert bad.status_code == 400
            # one job at a time (concurrency 1): the next one waits and can be cancelled
            queued = (await http.post("/services/export?async=true", headers=mine,
                                      json={"seconds": 0})).json()["jobId"]
            running = (await poll(http, job_id, partner["api_key"], "running")).json()
            assert running["startedAt"] and running["finishedAt"] is None
            assert (await http.delete(f"/services/jobs/{job_id}", headers=mine)).status_code == 409
            r = await http.delete(f"/services/jobs/{queued}", headers=mine)
            assert r.status_code == 200 and r.json()["status"] == "cancelled"
            theirs = {"X-API-Key": other["api_key"]}
            assert (await http.get(f"/services/jobs/{job_id}", headers=theirs)).status_code == 404
            assert (await http.delete(f"/services/jobs/{job_id}",
                                      headers=theirs)).status_code == 404
            assert (await http.get("/services/jobs", headers=theirs)).json()["count"] == 0
            done = (await poll(http, job_id, partner["api_key"], "succeeded")).json()
            assert done["result"] == {"status": 200, "body": {"slow": True}}
            assert done["attempts"] == 1
            got = await receiver.wait_for(1, "/jobs")
            payload = orjson.loads(got[0].body)
            assert payload["event"] == "jobcomplete" and payload["id"] == f"{job_id}-complete"
            assert payload["data"]["jobId"] == job_id and payload["data"]["service"] == "export"
            listed = (await http.get("/services/jobs", headers=mine)).json()
            assert [(j["jobId"], j["status"]) for j in listed["jobs"]] == [
                (queued, "cancelled"), (job_id, "succeeded")]
            # one claim, settled: the event was sent once (a second send needs a second claim)
            deadline = time.monotonic() + 20
            while True:
                log = (await http.get("/webhooks/deliveries", headers=mine)).json()
                if log["deliveries"][0]["status"] != "pending" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert [(d["status"], d["attempts"]) for d in log["deliveries"]] == [
                ("succeeded", 1)]
        assert len(receiver.at("/jobs")) == 1
        assert sum(1 for r in upstream.received if r.path == "/slow") == 1
    finally:
        await asyncio.to_thread(gp.stop)


async def test_kill_9_mid_job_then_restart_runs_it(tmp_path, database_url, upstream):
    gp = await gateway(tmp_path, database_url, upstream)
    try:
        partner = await asyncio.to_thread(gp.create_client, "partner", "services")
        key = partner["api_key"]
        async with httpx.AsyncClient(base_url=gp.url, timeout=10) as http:
            r = await http.post("/services/export?async=true", headers={"X-API-Key": key},
                                json={"seconds": 1})
            job_id = r.json()["jobId"]
            await poll(http, job_id, key, "running")
        # "running" is set when a worker claims the job, just before it calls the upstream:
        # kill only once the call is in flight (the upstream holds it for 1 s)
        deadline = time.monotonic() + 10
        while not any(r.path == "/slow" for r in upstream.received):
            assert time.monotonic() < deadline, "the job never called the upstream"
            await asyncio.sleep(0.02)
        gp.kill(signal.SIGKILL)
    finally:
        gp.kill(signal.SIGKILL)
    await asyncio.to_thread(gp.start)
    try:
        async with httpx.AsyncClient(base_url=gp.url, timeout=10) as http:
            done = (await poll(http, job_id, key, "succeeded")).json()
        assert done["attempts"] == 2
        assert sum(1 for r in upstream.received if r.path == "/slow") == 2
    finally:
        await asyncio.to_thread(gp.stop)


async def test_sigterm_lets_a_running_job_finish(tmp_path, sqlite_url, upstream):
    gp = await gateway(tmp_path, sqlite_url, upstream)
    partner = await asyncio.to_thread(gp.create_client, "partner", "services")
    key = partner["api_key"]
    try:
        async with httpx.AsyncClient(base_url=gp.url, timeout=10) as http:
            r = await http.post("/services/export?async=true", headers={"X-API-Key": key},
                                json={"seconds": 1})
            job_id = r.json()["jobId"]
            await poll(http, job_id, key, "running")
    finally:
        assert await asyncio.to_thread(gp.stop) == 0
    await asyncio.to_thread(gp.start)
    try:
        async with httpx.AsyncClient(base_url=gp.url, timeout=10) as http:
            r = await http.get(f"/services/jobs/{job_id}", headers={"X-API-Key": key})
        assert r.json()["status"] == "succeeded" and r.json()["attempts"] == 1, r.json()
    finally:
        await asyncio.to_thread(gp.stop)
