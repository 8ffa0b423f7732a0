"""Asynchronous invocation in process, on both backends: submission (validated before the
202), job status, listing, cancel, owner isolation, idempotency keys, retries, result limits,
`jobcomplete` / `jobfailed` to the owner's webhooks only, release on shutdown, pruning."""

import asyncio
import textwrap
import time
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import func, select

from servicegate.clock import utcnow
from servicegate.jobs.retention import prune
from servicegate.storage.schema import deliveries, jobs
from tests.conftest import make_settings
from tests.support.receivers import Receiver
from tests.test_auth_api import assert_problem

DEFINITIONS = """
    name: hello
    methods: [GET, POST]
    input:
      schema: {type: object, required: [n], properties: {n: {type: integer}}}
    action: {type: static, status: 201, body: {n: "{{ body.n }}", sub: "{{ subpath }}"}}
    ---
    name: plain
    methods: [GET]
    action: {type: static, body: {ok: true}}
    ---
    name: always
    async: always
    methods: [POST]
    action: {type: static, body: {always: true}}
    ---
    name: never
    async: forbidden
    action: {type: static}
    ---
    name: slow
    methods: [GET]
    timeout: 20s
    action: {type: http, url: "UPSTREAM/slow?s=1.5", query: none}
    ---
    name: flaky
    methods: [GET]
    action: {type: http, url: "UPSTREAM/flaky"}
    ---
    name: broken
    methods: [GET]
    action: {type: http, url: "UPSTREAM/fail"}
    ---
    name: big
    methods: [GET]
    action: {type: http, url: "UPSTREAM/big?size=5000", query: none}
"""


@pytest.fixture
def settings(tmp_path, database_url):
    (tmp_path / "definitions").mkdir()
    return make_settings(
        tmp_path, database_url,
        webhooks={"retry_schedule": ["0s", "100ms"], "poll_interval": "50ms", "jitter": 0},
        jobs={"lease": "3s", "poll_interval": "50ms", "retry_backoff": "50ms", "jitter": 0,
              "max_attempts": 3, "result_max_bytes": 4096, "shutdown_grace": "100ms"})


@pytest.fixture
async def gw(gateway, upstream):
    path = gateway.runtime.settings.definitions.dir / "all.yaml"
    path.write_text(textwrap.dedent(DEFINITIONS).replace("UPSTREAM", upstream.url))
    report = await gateway.runtime.definitions.reload()
    assert not report.problems, [str(p) for p in report.problems]
    gateway.partner = await gateway.new_client("partner", "services", "webhooks")
    gateway.other = await gateway.new_client("other", "services", "webhooks")
    return gateway


def key_of(who):
    return {"X-API-Key": who["api_key"]}


async def submit(gw, path, who=None, method="GET", **kwargs):
    headers = {**key_of(who or gw.partner), **kwargs.pop("headers", {})}
    r = await gw.client.request(method, path, headers=headers, **kwargs)
    assert r.status_code == 202, r.text
    return r


async def wait_status(gw, job_id, *statuses, who=None, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        r = await gw.client.get(f"/services/jobs/{job_id}", headers=key_of(who or gw.partner))
        assert r.status_code == 200, r.text
        if r.json()["status"] in statuses:
            return r
        assert time.monotonic() < deadline, r.json()
        await asyncio.sleep(0.05)


async def count_jobs(gw):
    async with gw.runtime.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(jobs))).scalar()


async def test_submit_poll_and_result(gw):
    gw.runtime.start_workers()
    r = await submit(gw, "/services/hello/a/b%20c?async=true", method="POST", json={"n": 7})
    job_id = r.json()["jobId"]
    assert r.json() == {"jobId": job_id, "status": "queued"}
    assert r.headers["location"] == f"http://gateway/services/jobs/{job_id}"
    assert r.headers["retry-after"] == "1"
    assert job_id.startswith("job_") and len(job_id) >= 40
    done = (await wait_status(gw, job_id, "succeeded")).json()
    assert done["result"] == {"status": 201, "body": {"n": 7, "sub": "a/b%20c"}}
    assert done["error"] is None and done["attempts"] == 1 and done["service"] == "hello"
    assert done["createdAt"] <= done["startedAt"] <= done["finishedAt"]
    r = await gw.client.get(f"/services/jobs/{job_id}", headers=key_of(gw.partner))
    assert "retry-after" not in r.headers


async def test_validation_happens_before_the_202(gw):
    call = gw.client.request
    h = key_of(gw.partner)
    assert "errors" in assert_problem(
        await call("POST", "/services/hello?async=true", headers=h, json={"n": "x"}), 400)
    assert_problem(await call("POST", "/services/hello?async=true", headers=h,
                              content=b"{oops", ), 400)
    assert_problem(await call("DELETE", "/services/hello?async=true", headers=h), 405)
    assert_problem(await call("GET", "/services/never?async=1", headers=h), 400)
    assert_problem(await call("GET", "/services/nothing?async=1", headers=h), 404)
    assert_problem(await call("GET", "/services/plain?async=maybe", headers=h), 400)
    assert_problem(await call("GET", "/services/plain?async=true"), 401)
    narrow = await gw.new_client("narrow", "services:plain")
    assert_problem(await call("GET", "/services/hello?async=true", headers=key_of(narrow)), 403)
    assert_problem(await call("GET", "/services/plain?async=true",
                              headers={**h, "Idempotency-Key": "x" * 300}), 400)
    assert await count_jobs(gw) == 0
    # a narrow client may submit and see its own jobs
    r = await submit(gw, "/services/plain?async=true", who=narrow)
    assert (await call("GET", f"/services/jobs/{r.json()['jobId']}",
                       headers=key_of(narrow))).status_code == 200


async def test_async_always_and_false(gw):
    r = await submit(gw, "/services/always", method="POST")
    assert r.json()["status"] == "queued"
    r = await gw.client.get("/services/plain?async=false", headers=key_of(gw.partner))
    assert r.status_code == 200 and r.json() == {"ok": True}


async def test_owner_isolation_and_unknown_ids(gw):
    r = await submit(gw, "/services/plain?async=true")
    job_id = r.json()["jobId"]
    other = key_of(gw.other)
    for method in ("GET", "DELETE"):
        body = assert_problem(await gw.client.request(method, f"/services/jobs/{job_id}",
                                                      headers=other), 404)
        assert body["detail"] == "you have no such job"
        assert_problem(await gw.client.request(method, "/services/jobs/job_nope",
                                               headers=key_of(gw.partner)), 404)
    assert (await gw.client.get("/services/jobs", headers=other)).json()["jobs"] == []
    mine = (await gw.client.get("/services/jobs", headers=key_of(gw.partner))).json()
    assert [j["jobId"] for j in mine["jobs"]] == [job_id]
    assert_problem(await gw.client.post("/services/jobs", headers=other), 405)
    assert_problem(await gw.client.put(f"/services/jobs/{job_id}", headers=other), 405)
    assert (await wait_status(gw, job_id, "queued")).json()["status"] == "queued"


async def test_metrics(gw):
    await submit(gw, "/services/plain?async=true")
    await gw.runtime.jobs.sample_metrics()
    text = (await gw.client.get("/metrics")).text
    assert 'servicegate_job_queue_depth{state="due"} 1.0' in text
    assert "servicegate_jobs_submitted_total" in text
    gw.runtime.start_workers()
    done = (await submit(gw, "/services/plain?async=true")).json()["jobId"]
    await wait_status(gw, done, "succeeded")
    text = (await gw.client.get("/metrics")).text
    assert 'servicegate_job_attempts_total{outcome="succeeded"}' in text


async def test_the_submitted_counter_counts_new_jobs_not_replays(gw):
    from servicegate.jobs.metrics import SUBMITTED

    before = SUBMITTED._value.get()
    await asyncio.gather(*(submit(gw, "/services/plain?async=true") for _ in range(5)))
    keyed = {"Idempotency-Key": "count-me-once"}
    for _ in range(3):
        await submit(gw, "/services/plain?async=true", headers=keyed)
    assert SUBMITTED._value.get() - before == 6


async def test_cancel_queued_running_and_finished(gw, upstream):
    h = key_of(gw.partner)
    queued = (await submit(gw, "/services/plain?async=true")).json()["jobId"]
    r = await gw.client.delete(f"/services/jobs/{queued}", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["finishedAt"] and "retry-after" not in r.headers
    body = assert_problem(await gw.client.delete(f"/services/jobs/{queued}", headers=h), 409)
    assert body["jobStatus"] == "cancelled"
    slow = (await submit(gw, "/services/slow?async=true")).json()["jobId"]
    gw.runtime.start_workers()
    await wait_status(gw, slow, "running")
    body = assert_problem(await gw.client.delete(f"/services/jobs/{slow}", headers=h), 409)
    assert body["jobStatus"] == "running"
    await asyncio.sleep(0.3)
    assert (await wait_status(gw, queued, "cancelled")).json()["startedAt"] is None
    done = (await submit(gw, "/services/plain?async=true")).json()["jobId"]
    await wait_status(gw, done, "succeeded")
    body = assert_problem(await gw.client.delete(f"/services/jobs/{done}", headers=h), 409)
    assert body["jobStatus"] == "succeeded"


async def test_idempotency_key(gw):
    h = {"Idempotency-Key": "order-42"}
    first = await submit(gw, "/services/hello?async=true", method="POST", json={"n": 1}, headers=h)
    again = await submit(gw, "/services/hello?async=true", method="POST", json={"n": 1}, headers=h)
    assert again.json()["jobId"] == first.json()["jobId"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    for method, path, body in (("POST", "/services/hello?async=true", {"n": 2}),
                               ("POST", "/services/hello/x?async=true", {"n": 1}),
                               ("GET", "/services/plain?async=true", None)):
        r = await gw.client.request(method, path, json=body,
                                    headers={**key_of(gw.partner), **h})
        assert assert_problem(r, 422)["title"] == "Idempotency key reused"
    theirs = await submit(gw, "/services/hello?async=true", who=gw.other, method="POST",
                          json={"n": 1}, headers=h)
    assert theirs.json()["jobId"] != first.json()["jobId"]
    assert await count_jobs(gw) == 2
    # after the key's time to live a new job starts under the same key
    async with gw.runtime.engine.begin() as conn:
        await conn.execute(jobs.update().values(created_at=utcnow() - timedelta(days=2)))
    later = await submit(gw, "/services/hello?async=true", method="POST", json={"n": 2}, headers=h)
    assert later.json()["jobId"] not in (first.json()["jobId"], theirs.json()["jobId"])


async def test_concurrent_submissions_with_one_key_make_one_job(gw):
    async def one():
        return await submit(gw, "/services/plain?async=true", headers={"Idempotency-Key": "k"})
    answers = await asyncio.gather(*(one() for _ in range(8)))
    assert len({a.json()["jobId"] for a in answers}) == 1
    assert await count_jobs(gw) == 1


async def test_retries_then_success_and_final_failure(gw, upstream):
    gw.runtime.start_workers()
    upstream.flaky_failures = 2
    flaky = (await submit(gw, "/services/flaky?async=true")).json()["jobId"]
    done = (await wait_status(gw, flaky, "succeeded")).json()
    assert done["attempts"] == 3 and done["result"] == {"status": 200, "body": {"ok": True}}
    broken = (await submit(gw, "/services/broken?async=true")).json()["jobId"]
    failed = (await wait_status(gw, broken, "failed")).json()
    assert failed["attempts"] == 3
    assert failed["result"] == {"status": 500, "body": {"error": "boom"}}
    assert failed["error"]["status"] == 502 and failed["error"]["upstreamStatus"] == 500
    assert failed["error"]["instance"] == f"/services/jobs/{broken}"
    big = (await submit(gw, "/services/big?async=true")).json()["jobId"]
    failed = (await wait_status(gw, big, "failed")).json()
    assert failed["attempts"] == 1 and "result_max_bytes" in failed["error"]["detail"]


async def test_list_filters_and_pages(gw):
    ids = [(await submit(gw, "/services/plain?async=true")).json()["jobId"] for _ in range(5)]
    await gw.client.delete(f"/services/jobs/{ids[1]}", headers=key_of(gw.partner))
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await gw.client.get("/services/jobs", params=params,
                                    headers=key_of(gw.partner))).json()
        assert page["count"] == len(page["jobs"]) <= 2
        seen += [j["jobId"] for j in page["jobs"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    r = await gw.client.get("/services/jobs?status=cancelled", headers=key_of(gw.partner))
    assert [j["jobId"] for j in r.json()["jobs"]] == [ids[1]]
    r = await gw.client.get("/services/jobs?status=queued", headers=key_of(gw.partner))
    assert r.json()["count"] == 4
    for bad in ("status=done", "limit=0", "limit=101", "cursor=abc", "colour=red"):
        assert_problem(await gw.client.get(f"/services/jobs?{bad}", headers=key_of(gw.partner)),
                       400)


async def test_job_events_reach_only_the_owners_webhooks(gw):
    receiver = await Receiver().start()
    try:
        for who, path in ((gw.partner, "/mine"), (gw.other, "/theirs")):
            r = await gw.client.post("/webhooks", headers=key_of(who), json={
                "events": ["jobcomplete", "jobfailed"], "url": receiver.url(path)})
            assert r.status_code == 200, r.text
        gw.runtime.start_workers()
        ok = (await submit(gw, "/services/plain?async=true")).json()["jobId"]
        bad = (await submit(gw, "/services/big?async=true")).json()["jobId"]
        got = await receiver.wait_for(2, "/mine")
        payloads = {orjson.loads(g.body)["event"]: orjson.loads(g.body) for g in got}
        assert payloads["jobcomplete"]["id"] == f"{ok}-complete"
        assert payloads["jobcomplete"]["data"] == {
            "jobId": ok, "service": "plain", "status": "succeeded", "attempts": 1,
            "result": {"status": 200}}
        assert payloads["jobfailed"]["data"]["jobId"] == bad
        assert payloads["jobfailed"]["data"]["error"]["status"] == 500
        # the events and their deliveries were stored together, before /mine got them
        async with gw.runtime.engine.connect() as conn:
            owners = (await conn.execute(select(deliveries.c.client_id))).scalars().all()
        assert owners == [gw.partner["client_id"]] * 2
        assert receiver.at("/theirs") == [] and len(receiver.at("/mine")) == 2
    finally:
        await receiver.stop()


async def test_shutdown_releases_a_running_job(gw, upstream):
    gw.runtime.start_workers()
    slow = (await submit(gw, "/services/slow?async=true")).json()["jobId"]
    await wait_status(gw, slow, "running")
    await gw.runtime.stop_background()
    job = (await wait_status(gw, slow, "queued")).json()
    assert job["attempts"] == 0 and job["finishedAt"] is None


async def test_retention_prunes_finished_jobs_only(gw):
    gw.runtime.start_workers()
    done = (await submit(gw, "/services/plain?async=true")).json()["jobId"]
    await wait_status(gw, done, "succeeded")
    await gw.runtime.stop_background()
    waiting = (await submit(gw, "/services/plain?async=true")).json()["jobId"]
    retention = gw.runtime.settings.jobs.retention
    assert await prune(gw.runtime.engine, retention) == 0
    later = utcnow() + timedelta(seconds=retention + 60)
    assert await prune(gw.runtime.engine, retention, now=later) == 1
    h = key_of(gw.partner)
    assert_problem(await gw.client.get(f"/services/jobs/{done}", headers=h), 404)
    assert (await gw.client.get(f"/services/jobs/{waiting}", headers=h)).status_code == 200


async def test_the_location_of_a_job_follows_the_address_the_client_used(gw):
    """`Location` names the host (and port) the client addressed, as `Host` sent it."""
    r = await submit(gw, "/services/plain?async=true",
                     headers={"Host": "api.example.com:8443"})
    job_id = r.json()["jobId"]
    assert r.headers["location"] == f"http://api.example.com:8443/services/jobs/{job_id}"
