"""Deliveries to real receivers (aiohttp.web on free ports), in process, on both backends."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from servicegate.storage.schema import deliveries, events
from servicegate.webhooks.retention import prune
from tests.conftest import make_settings
from tests.support.processes import free_port
from tests.support.receivers import Receiver
from tests.test_auth_api import assert_problem

SECRET = "partner-secret-ü"


@pytest.fixture
def settings(tmp_path, database_url):
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
    """The gateway with its delivery workers running, a subscriber and a publisher."""
    gateway.runtime.start_workers()
    gateway.sub = await gateway.new_client("partner", "webhooks")
    gateway.pub = await gateway.new_client("backoffice", "events:publish")
    yield gateway


def key(creds):
    return {"X-API-Key": creds["api_key"]}


async def register(gw, url, events=("payment",), creds=None, **extra):
    r = await gw.client.post("/webhooks", headers=key(creds or gw.sub),
                             json={"events": list(events), "url": url, **extra})
    assert r.status_code == 200, r.text
    return r.json()


async def publish(gw, event="payment", data=None, **extra):
    r = await gw.client.post("/events", headers=key(gw.pub),
                             json={"event": event, "data": data, **extra})
    assert r.status_code == 202, r.text
    return r.json()["id"]


async def until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last: {value!r})")
        await asyncio.sleep(0.05)


async def listing(gw, creds=None, **query):
    r = await gw.client.get("/webhooks/deliveries", headers=key(creds or gw.sub), params=query)
    assert r.status_code == 200, r.text
    return r.json()


async def only_delivery(gw, status):
    async def check():
        body = await listing(gw)
        return body["deliveries"][0] if body["count"] == 1 and \
            body["deliveries"][0]["status"] == status else None
    return await until(check)


async def test_signed_delivery_verifies_with_standardwebhooks(hooks, receiver):
    await register(hooks, receiver.url("/in"), secret=SECRET, method="PUT")
    event_id = await publish(hooks, data={"amount": 12.5, "debtor": "Ådne"},
                             occurredAt="2026-03-01T10:00:00Z")
    (got,) = await receiver.wait_for(1, "/in")
    assert got.method == "PUT"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"].startswith("ServiceGate")
    assert got.headers["webhook-id"] == event_id
    assert got.headers["webhook-signature"].startswith("v1,")
    payload = Webhook(SECRET.encode("utf-8")).verify(got.body, got.headers)
    assert payload == {"id": event_id, "event": "payment", "timestamp": "2026-03-01T10:00:00Z",
                       "data": {"amount": 12.5, "debtor": "Ådne"}, "secret": SECRET}
    with pytest.raises(Exception, match="signature"):
        Webhook(b"another secret").verify(got.body, got.headers)
    delivery = await only_delivery(hooks, "succeeded")
    r = await hooks.client.get(f"/webhooks/deliveries/{delivery['id']}", headers=key(hooks.sub))
    detail = r.json()
    assert detail["attempts"] == 1 and detail["data"] == {"amount": 12.5, "debtor": "Ådne"}
    assert [a["statusCode"] for a in detail["attemptLog"]] == [204]
    assert detail["attemptLog"][0]["durationMs"] >= 0


async def test_without_secret_in_payload_and_without_secret(hooks, receiver):
    hooks.runtime.settings.webhooks.include_secret_in_payload = False
    await register(hooks, receiver.url("/signed"), secret=SECRET)
    await register(hooks, receiver.url("/plain"))
    await publish(hooks)
    (signed,) = await receiver.wait_for(1, "/signed")
    (plain,) = await receiver.wait_for(1, "/plain")
    assert "secret" not in orjson.loads(signed.body)
    Webhook(SECRET.encode()).verify(signed.body, signed.headers)
    assert "webhook-signature" not in plain.headers and "webhook-id" in plain.headers


async def test_retries_5xx_with_the_same_webhook_id_until_success(hooks, receiver):
    receiver.plan("/flaky", 500, 502)
    await register(hooks, receiver.url("/flaky"), secret=SECRET)
    await publish(hooks, data=1)
    got = await receiver.wait_for(3, "/flaky")
    assert len({r.headers["webhook-id"] for r in got}) == 1
    for r in got:
        Webhook(SECRET.encode()).verify(r.body, r.headers)
    delivery = await only_delivery(hooks, "succeeded")
    detail = (await hooks.client.get(f"/webhooks/deliveries/{delivery['id']}",
                                     headers=key(hooks.sub))).json()
    assert [a["statusCode"] for a in detail["attemptLog"]] == [500, 502, 204]
    assert detail["attemptLog"][0]["responseBody"] == "answer 500"


async def test_429_retry_after_is_honoured(hooks, receiver):
    receiver.plan("/busy", 429, headers={"Retry-After": "2"})
    await register(hooks, receiver.url("/busy"))
    await publish(hooks)
    first, second = await receiver.wait_for(2, "/busy", timeout=10)
    assert second.at - first.at >= 1.9


async def test_hanging_receiver_times_out_then_fails_and_is_kept(hooks, receiver):
    receiver.hang.add("/slow")
    await register(hooks, receiver.url("/slow"))
    await publish(hooks)
    delivery = await only_delivery(hooks, "failed")
    assert delivery["attempts"] == 3 and "timed out" in delivery["lastError"]
    assert len(receiver.at("/slow")) == 3


async def test_refused_connection_then_retry_and_recover(hooks):
    port = free_port()
    url = f"http://127.0.0.1:{port}/late"
    await register(hooks, url)
    await publish(hooks, data="a")
    await publish(hooks, data="b")

    async def both_failed():
        body = await listing(hooks, status="failed")
        return body if body["count"] == 2 else None

    failed = (await until(both_failed))["deliveries"]
    assert all("Connect" in d["lastError"] for d in failed)
    late = await Receiver(port=port).start()
    try:
        r = await hooks.client.post(f"/webhooks/deliveries/{failed[0]['id']}/retry",
                                    headers=key(hooks.sub))
        assert r.status_code == 202
        await late.wait_for(1, "/late")
        r = await hooks.client.post("/webhooks/recover", headers=key(hooks.sub), json={
            "url": url, "since": (datetime.now(UTC) - timedelta(hours=1)).isoformat()})
        assert r.status_code == 202 and r.json()["requeued"] == 1
        got = await late.wait_for(2, "/late")
        assert sorted(orjson.loads(g.body)["data"] for g in got) == ["a", "b"]

        async def all_ok():
            body = await listing(hooks, status="succeeded")
            return body if body["count"] == 2 else None

        await until(all_ok)
    finally:
        await late.stop()


async def test_410_disables_and_registering_again_resumes(hooks, receiver):
    receiver.plan("/gone", 410)
    await register(hooks, receiver.url("/gone"))
    await publish(hooks, data=1)

    async def disabled():
        body = (await hooks.client.get("/webhooks", headers=key(hooks.sub))).json()
        return body["webHooks"][0] if body["webHooks"][0]["status"] == "disabled" else None

    hook = await until(disabled)
    assert "410" in hook["disabledReason"]
    await publish(hooks, data=2)

    async def both_held():
        statuses = [d["status"] for d in (await listing(hooks))["deliveries"]]
        return statuses == ["held", "held"]

    await until(both_held)  # a disabled webhook's deliveries wait; no worker may send them
    assert len(receiver.at("/gone")) == 1
    r = await hooks.client.post(f"/webhooks/deliveries/{(await listing(hooks))['deliveries'][0]['id']}/retry",
                                headers=key(hooks.sub))
    assert_problem(r, 409)
    await register(hooks, receiver.url("/gone"))
    got = await receiver.wait_for(3, "/gone")
    assert sorted(orjson.loads(g.body)["data"] for g in got[1:]) == [1, 2]


async def test_consecutive_failures_disable_and_admin_enable_resumes(hooks, receiver):
    hooks.runtime.settings.webhooks.disable_after_failures = 2
    receiver.default_status = 500
    await register(hooks, receiver.url("/down"))
    await publish(hooks, data=1)
    await publish(hooks, data=2)
    admin = {"X-API-Key": hooks.admin_key}

    async def disabled():
        body = (await hooks.client.get("/admin/webhooks", headers=admin)).json()
        return body["webHooks"][0] if body["webHooks"][0]["status"] == "disabled" else None

    hook = await until(disabled)
    assert "2 consecutive" in hook["disabledReason"]
    sent = len(receiver.at("/down"))
    await publish(hooks, data=3)

    async def newest_held():
        return (await listing(hooks))["deliveries"][0]["status"] == "held"

    await until(newest_held)  # stored waiting for the webhook, never handed to a worker
    assert len(receiver.at("/down")) == sent
    receiver.default_status = 204
    r = await hooks.client.post(f"/admin/webhooks/{hook['id']}/enable", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "active"
    got = await receiver.wait_for(sent + 1, "/down")
    assert orjson.loads(got[-1].body)["data"] == 3
    assert_problem(await hooks.client.post("/admin/webhooks/wh_nope/enable", headers=admin), 404)
    assert_problem(await hooks.client.get("/admin/webhooks", headers=key(hooks.sub)), 403)


async def test_ssrf_guard_refuses_private_targets_at_delivery(hooks, receiver):
    await register(hooks, f"http://localhost:{receiver.port}/name")
    await register(hooks, receiver.url("/literal"))
    # urlsplit reads a name here; the client connects to 127.0.0.1 without resolving anything
    await register(hooks, f"http://１２７。０。０。①:{receiver.port}/unicode")  # noqa: RUF001
    hooks.runtime.settings.webhooks.allow_private_networks = False
    await hooks.runtime.stop_background()  # the delivery session is rebuilt with the guard
    hooks.runtime.start_workers()
    await publish(hooks)

    async def all_failed():
        body = await listing(hooks, status="failed")
        return body if body["count"] == 3 else None

    failed = (await until(all_failed))["deliveries"]
    assert all("refused" in d["lastError"] for d in failed), failed
    assert receiver.requests == []


async def test_test_endpoint_reports_the_outcome(hooks, receiver):
    receiver.plan("/t", 503)
    await register(hooks, receiver.url("/t"), events=["debtinsert"], secret=SECRET)
    r = await hooks.client.post("/webhooks/test", headers=key(hooks.sub), json={"url": receiver.url("/t")})
    assert r.json()["ok"] is False and r.json()["statusCode"] == 503
    r = await hooks.client.post("/webhooks/test", headers=key(hooks.sub),
                                json={"url": receiver.url("/t"), "event": "payment"})
    body = r.json()
    assert body["ok"] is True and body["statusCode"] == 204 and body["event"] == "payment"
    payload = Webhook(SECRET.encode()).verify(receiver.at("/t")[-1].body, receiver.at("/t")[-1].headers)
    assert payload["data"] == {"test": True}
    r = await hooks.client.post("/webhooks/test", headers=key(hooks.sub),
                                json={"url": "http://127.0.0.1:9/unknown"})
    assert_problem(r, 404)


async def test_delivery_log_filters_pages_and_isolation(hooks, receiver):
    await register(hooks, receiver.url("/a"), events=["payment", "debtinsert"])
    for i in range(3):
        await publish(hooks, data=i)
    await publish(hooks, "debtinsert", data="d")
    await receiver.wait_for(4)
    seen, cursor = [], None
    while True:
        page = await listing(hooks, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += page["deliveries"]
        cursor = page["next"]
        if not cursor:
            break
    assert len(seen) == 4 and len({d["id"] for d in seen}) == 4
    assert [d["id"] for d in seen] == sorted((d["id"] for d in seen), reverse=True)
    assert (await listing(hooks, event="debtinsert"))["count"] == 1
    assert (await listing(hooks, url=receiver.url("/a")))["count"] == 4
    assert (await listing(hooks, url="http://elsewhere/"))["count"] == 0
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await listing(hooks, since=future))["count"] == 0
    stranger = await hooks.new_client("stranger", "webhooks")
    assert (await listing(hooks, creds=stranger))["count"] == 0
    r = await hooks.client.get(f"/webhooks/deliveries/{seen[0]['id']}", headers=key(stranger))
    assert_problem(r, 404)
    r = await hooks.client.post(f"/webhooks/deliveries/{seen[0]['id']}/retry", headers=key(stranger))
    assert_problem(r, 404)
    for bad in ({"status": "nope"}, {"since": "yesterday"}, {"limit": "0"}, {"cursor": "x"},
                {"colour": "red"}):
        r = await hooks.client.get("/webhooks/deliveries", headers=key(hooks.sub), params=bad)
        assert_problem(r, 400)


async def test_unregistering_cancels_waiting_deliveries(hooks, receiver):
    receiver.default_status = 500
    hooks.runtime.settings.webhooks.retry_schedule = [0.0, 30.0]
    hooks.runtime.webhooks.publisher.attempt_budget = 2
    await register(hooks, receiver.url("/bye"))
    await publish(hooks)
    await receiver.wait_for(1, "/bye")

    async def waiting():
        body = await listing(hooks)
        return body["deliveries"][0]["lastStatusCode"] == 500

    await until(waiting)
    r = await hooks.client.request("DELETE", "/webhooks", headers=key(hooks.sub),
                                   json={"url": receiver.url("/bye")})
    assert r.status_code == 200
    delivery = await only_delivery(hooks, "cancelled")
    assert delivery["completedAt"]


async def test_retention_prunes_old_finished_work_only(hooks, receiver):
    await register(hooks, receiver.url("/r"))
    receiver.plan("/r", 204, 500, 500, 500)
    await publish(hooks, data="ok")
    await receiver.wait_for(1, "/r")
    await only_delivery(hooks, "succeeded")
    await publish(hooks, data="bad")

    async def one_failed():
        return (await listing(hooks, status="failed"))["count"] == 1

    await until(one_failed)
    engine = hooks.runtime.engine
    cfg = hooks.runtime.settings.webhooks
    later = datetime.now(UTC) + timedelta(days=cfg.retention_days + 1)
    pruned = await prune(engine, cfg, now=later)
    assert (pruned.deliveries, pruned.events) == (1, 1)
    async with engine.connect() as conn:
        left = (await conn.execute(select(deliveries.c.status))).scalars().all()
    assert left == ["failed"]
    pruned = await prune(engine, cfg, now=later + timedelta(days=cfg.failed_retention_days))
    assert (pruned.deliveries, pruned.events) == (1, 1)
    async with engine.connect() as conn:
        assert (await conn.execute(select(events.c.id))).all() == []


async def test_expired_lease_is_claimed_again(hooks, receiver):
    """A worker that died mid-delivery: its lease runs out and another claim sends it."""
    await hooks.runtime.stop_background()
    await register(hooks, receiver.url("/lease"))
    await publish(hooks)
    queue = hooks.runtime.webhooks.queue
    claim = await queue.claim(10, lease=0.3)
    assert len(claim.rows) == 1
    assert (await queue.claim(10, lease=0.3)).rows == []
    await asyncio.sleep(0.4)
    hooks.runtime.start_workers()
    await receiver.wait_for(1, "/lease")
    delivery = await only_delivery(hooks, "succeeded")
    assert delivery["attempts"] == 2  # the lost attempt counts
    async with hooks.runtime.engine.begin() as conn:  # the dead worker's late answer is ignored
        await queue.settle(conn, [queue.failed(delivery["id"], claim.token)])
        await conn.execute(update(deliveries).values(updated_at=datetime.now(UTC)))
    assert (await only_delivery(hooks, "succeeded"))["id"] == delivery["id"]


async def test_odd_response_bodies_are_kept_truncated(hooks, receiver):
    receiver.plan("/odd", 500, 200)
    receiver.bodies["/odd"] = b"\x00\xff binary \x00" + b"z" * 5000
    await register(hooks, receiver.url("/odd"))
    await publish(hooks)
    delivery = await only_delivery(hooks, "succeeded")
    detail = (await hooks.client.get(f"/webhooks/deliveries/{delivery['id']}",
                                     headers=key(hooks.sub))).json()
    first, second = detail["attemptLog"]
    assert first["statusCode"] == 500 and second["statusCode"] == 200
    assert len(first["responseBody"]) == 2048 and "binary" in first["responseBody"]


async def test_metrics_count_outcomes_and_queue_depth(hooks, receiver):
    hooks.runtime.settings.webhooks.retry_schedule = [0.0, 3600.0]
    hooks.runtime.webhooks.publisher.attempt_budget = 2
    receiver.plan("/m", 500)
    await register(hooks, receiver.url("/m"))
    await register(hooks, receiver.url("/ok"))
    await publish(hooks)
    await receiver.wait_for(1, "/m")
    await receiver.wait_for(1, "/ok")

    async def settled():
        body = await listing(hooks)
        return all(not d["sending"] and d["lastStatusCode"] for d in body["deliveries"])

    await until(settled)
    await hooks.runtime.webhooks.sample_metrics()
    text = (await hooks.client.get("/metrics")).text
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith("servicegate_webhook_")}
    assert values['servicegate_webhook_queue_depth{state="scheduled"}'] == 1
    assert values['servicegate_webhook_queue_depth{state="due"}'] == 0
    assert values['servicegate_webhook_deliveries_total{outcome="succeeded"}'] >= 1
    assert values['servicegate_webhook_deliveries_total{outcome="retry"}'] >= 1
    assert values["servicegate_webhook_attempt_duration_seconds_count"] >= 2


async def test_a_manual_retry_of_a_waiting_delivery_keeps_its_schedule(hooks, receiver):
    """Retrying a delivery that waits for its next attempt moves that attempt up; when it
    fails as well, the remaining scheduled attempts still come."""
    receiver.default_status = 500
    hooks.runtime.settings.webhooks.retry_schedule = [0.0, 3600.0, 3600.0, 3600.0]
    hooks.runtime.webhooks.publisher.attempt_budget = 4
    await register(hooks, receiver.url("/flaky"))
    await publish(hooks)
    await receiver.wait_for(1, "/flaky")

    async def retrying():
        found = (await listing(hooks, status="retrying"))["deliveries"]
        return found[0] if found else None

    waiting = await until(retrying)
    assert waiting["status"] == "pending" and waiting["retrying"] and waiting["attempts"] == 1
    r = await hooks.client.post(f"/webhooks/deliveries/{waiting['id']}/retry",
                                headers=key(hooks.sub))
    assert r.status_code == 202, r.text
    await receiver.wait_for(2, "/flaky")

    async def failed_again():
        found = (await listing(hooks, status="retrying"))["deliveries"]
        settled = found and found[0]["attempts"] == 2 and not found[0]["sending"]
        return found[0] if settled else None

    again = await until(failed_again)  # still pending, its next attempt scheduled
    assert again["nextAttemptAt"] is not None and again["completedAt"] is None
    assert (await listing(hooks, status="failed"))["deliveries"] == []
