"""Registration, catalog and publishing over HTTP, in process, on both backends."""

import pytest
from sqlalchemy import func, select

from servicegate.storage.schema import deliveries, events, webhooks
from tests.support.receivers import Listener
from tests.test_auth_api import assert_problem

# 127.0.0.1 as IDNA (UTS-46) maps it: ideographic and fullwidth full stops, fullwidth and
# circled digits. urlsplit sees a name; the HTTP client connects to the loopback address.
UNICODE_LOOPBACK = ["127。0。0。1", "１２７.０.０.１", "①②⑦.0.0.1", "127．0．0．1", "127｡0｡0｡1",  # noqa: RUF001
                    "127.0.0.1。"]


def key(creds):
    return {"X-API-Key": creds["api_key"]}


async def count(gateway, table):
    async with gateway.runtime.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_register_list_merge_and_secret_never_returned(gateway):
    partner = await gateway.new_client("partner", "webhooks")
    h = key(partner)
    r = await gateway.client.post("/webhooks", headers=h, json={
        "events": ["DebtInsert", "payment"], "url": "http://127.0.0.1:9/hook?x=1",
        "secret": "s3cret"})
    assert r.status_code == 200, r.text
    assert r.json() == {"events": ["debtinsert", "payment"], "url": "http://127.0.0.1:9/hook?x=1",
                        "method": "POST"}
    r = await gateway.client.post("/webhooks", headers=h, json={
        "events": ["transaction", "payment"], "url": "http://127.0.0.1:9/hook?x=1",
        "secret": "other", "method": "put"})
    assert r.json() == {"events": ["debtinsert", "payment", "transaction"],
                        "url": "http://127.0.0.1:9/hook?x=1", "method": "PUT"}
    r = await gateway.client.get("/webhooks", headers=h)
    body = r.json()
    assert body["count"] == 1
    assert body["webHooks"][0]["events"] == ["debtinsert", "payment", "transaction"]
    assert body["webHooks"][0]["status"] == "active"
    assert '"secret"' not in r.text and "other" not in r.text and "s3cret" not in r.text
    assert body["webHooks"][0]["secretInPayload"] is True
    assert "previousSecretExpiresAt" in body["webHooks"][0]  # the old secret signs for a while
    hook = await gateway.runtime.webhooks.store.find(partner["client_id"], "http://127.0.0.1:9/hook?x=1")
    assert hook.secret == "other" and hook.previous_secret == "s3cret"


async def test_clients_are_isolated(gateway):
    a = await gateway.new_client("a", "webhooks")
    b = await gateway.new_client("b", "webhooks")
    await gateway.client.post("/webhooks", headers=key(a), json={
        "events": ["payment"], "url": "http://127.0.0.1:9/a"})
    r = await gateway.client.get("/webhooks", headers=key(b))
    assert r.json() == {"count": 0, "webHooks": []}
    r = await gateway.client.request("DELETE", "/webhooks", headers=key(b),
                                     json={"url": "http://127.0.0.1:9/a"})
    assert_problem(r, 404)
    # the same URL registered by b is b's own webhook
    await gateway.client.post("/webhooks", headers=key(b), json={
        "events": ["debtinsert"], "url": "http://127.0.0.1:9/a"})
    r = await gateway.client.get("/webhooks", headers=key(a))
    assert r.json()["webHooks"][0]["events"] == ["payment"]


async def test_delete_some_then_all_events(gateway):
    c = await gateway.new_client("c", "webhooks")
    url = "https://example.com/hook"
    await gateway.client.post("/webhooks", headers=key(c), json={
        "events": ["payment", "debtinsert", "debtupdate"], "url": url})
    r = await gateway.client.request("DELETE", "/webhooks", headers=key(c),
                                     json={"url": url, "events": ["PAYMENT"]})
    assert r.status_code == 200
    assert r.json() == {"events": ["debtinsert", "debtupdate"], "url": url, "method": "POST"}
    r = await gateway.client.request("DELETE", "/webhooks", headers=key(c), json={"url": url})
    assert r.json() == {"events": [], "url": url, "method": "POST"}
    assert (await gateway.client.get("/webhooks", headers=key(c))).json()["count"] == 0
    r = await gateway.client.request("DELETE", "/webhooks", headers=key(c), json={"url": url})
    assert_problem(r, 404)


@pytest.mark.parametrize("body, pointer", [
    ({"events": ["nosuchevent"], "url": "http://127.0.0.1:9/x"}, "/events/0"),
    ({"events": [], "url": "http://127.0.0.1:9/x"}, "/events"),
    ({"events": ["payment"], "url": "/relative"}, "/url"),
    ({"events": ["payment"], "url": "ftp://example.com/x"}, "/url"),
    ({"events": ["payment"], "url": "http:///nohost"}, "/url"),
    ({"events": ["payment"], "url": "http://127.0.0.1:9/x", "method": "GET"}, "/method"),
    ({"events": ["payment"], "url": "http://127.0.0.1:9/x", "secret": ""}, "/secret"),
    ({"events": ["payment"], "url": "http://127.0.0.1:9/x", "secret": "x" * 257}, "/secret"),
    ({"events": ["payment"], "url": "http://example.com/" + "x" * 2100}, "/url"),
    ({"events": ["payment"], "url": "http://127.0.0.1:9/x", "extra": 1}, "/extra"),
    ({"events": ["payment"], "url": "http://user:pass@example.com/x"}, "/url"),
    ({"events": ["payment"], "url": "http://example.com\\@10.0.0.1/x"}, "/url"),
])
async def test_bad_registrations_are_400_and_store_nothing(gateway, body, pointer):
    c = await gateway.new_client("c", "webhooks")
    r = await gateway.client.post("/webhooks", headers=key(c), json=body)
    problem = assert_problem(r, 400)
    assert pointer in [e["pointer"] for e in problem["errors"]]
    assert await count(gateway, webhooks) == 0


async def test_malformed_json_and_scope(gateway):
    c = await gateway.new_client("c", "webhooks")
    r = await gateway.client.post("/webhooks", headers={**key(c), "content-type": "application/json"},
                                  content=b"{nope")
    assert_problem(r, 400)
    other = await gateway.new_client("o", "services")
    assert_problem(await gateway.client.get("/webhooks", headers=key(other)), 403)
    assert_problem(await gateway.client.get("/webhooks"), 401)
    assert_problem(await gateway.client.post("/events", headers=key(c),
                                             json={"event": "payment"}), 403)


async def test_private_literal_refused_at_registration_unless_allowed(gateway):
    c = await gateway.new_client("c", "webhooks")
    gateway.runtime.settings.webhooks.allow_private_networks = False
    for url in ("http://127.0.0.1/x", "http://10.1.2.3/x", "http://[::1]/x",
                "http://169.254.169.254/latest", "http://[::ffff:192.168.0.1]/x",
                "http://100.64.0.1/x", "http://localhost:8080/x"):
        r = await gateway.client.post("/webhooks", headers=key(c), json={"events": ["payment"],
                                                                         "url": url})
        assert_problem(r, 400)
    r = await gateway.client.post("/webhooks", headers=key(c), json={
        "events": ["payment"], "url": "https://93.184.215.14/hook"})
    assert r.status_code == 200


@pytest.fixture
async def listener():
    server = await Listener().start()
    yield server
    await server.stop()


@pytest.mark.parametrize("host", UNICODE_LOOPBACK)
async def test_unicode_spelled_loopback_is_refused_and_never_connected_to(gateway, listener, host):
    c = await gateway.new_client("c", "webhooks")
    gateway.runtime.settings.webhooks.allow_private_networks = False
    url = f"http://{host}:{listener.port}/x"
    r = await gateway.client.post("/webhooks", headers=key(c), json={"events": ["debtinsert"],
                                                                     "url": url})
    problem = assert_problem(r, 400)
    [error] = problem["errors"]
    assert error["pointer"] == "/url"
    assert error["message"].startswith("the URL's host 127.0.0.1")
    assert error["message"].endswith("is a loopback address; private networks are not allowed")
    assert await count(gateway, webhooks) == 0
    assert await listener.settled() == []


@pytest.mark.parametrize("host", UNICODE_LOOPBACK)
async def test_test_delivery_refuses_a_stored_unicode_loopback_url(gateway, listener, host):
    """A URL stored while private networks were allowed is judged again when it is used."""
    c = await gateway.new_client("c", "webhooks")
    url = f"http://{host}:{listener.port}/x"
    r = await gateway.client.post("/webhooks", headers=key(c), json={"events": ["debtinsert"],
                                                                     "url": url})
    assert r.status_code == 200, r.text
    gateway.runtime.settings.webhooks.allow_private_networks = False
    await gateway.runtime.webhooks.close()  # the delivery session is rebuilt with the guard
    r = await gateway.client.post("/webhooks/test", headers=key(c), json={"url": url})
    problem = assert_problem(r, 400)
    assert problem["detail"].startswith("the webhook's URL is refused: 127.0.0.1")
    assert problem["detail"].endswith("is a loopback address")
    assert "loopback-secret" not in r.text
    assert await listener.settled() == []


async def test_user_info_is_refused_naming_it(gateway):
    c = await gateway.new_client("c", "webhooks")
    r = await gateway.client.post("/webhooks", headers=key(c), json={
        "events": ["payment"], "url": "https://partner:hunter2@example.com/hook"})
    problem = assert_problem(r, 400)
    assert "user info" in problem["errors"][0]["message"]
    assert "hunter2" not in r.text
    assert await count(gateway, webhooks) == 0


async def test_event_catalog(gateway):
    gateway.runtime.webhooks.catalog.__init__(["ordershipped"])
    c = await gateway.new_client("c", "webhooks")
    r = await gateway.client.get("/webhooks/events", headers=key(c))
    body = r.json()
    names = [e["name"] for e in body["events"]]
    assert body["count"] == len(names)
    for name in ("appsrvstartup", "debtinsert", "payment", "transaction", "creditdebtservicedelete",
                 "ordershipped"):
        assert name in names
    origins = {e["name"]: e["origin"] for e in body["events"]}
    assert origins["ordershipped"] == "custom" and origins["userlogin"] == "gateway"
    r = await gateway.client.post("/webhooks", headers=key(c), json={"events": ["OrderShipped"],
                                                                     "url": "http://127.0.0.1:9/"})
    assert r.json()["events"] == ["ordershipped"]


async def test_publish_single_batch_and_idempotency(gateway):
    pub = await gateway.new_client("backoffice", "events:publish")
    sub = await gateway.new_client("sub", "webhooks")
    await gateway.client.post("/webhooks", headers=key(sub), json={
        "events": ["payment"], "url": "http://127.0.0.1:9/hook"})
    r = await gateway.client.post("/events", headers=key(pub),
                                  json={"event": "Payment", "data": {"amount": 10}})
    assert r.status_code == 202
    first = r.json()["id"]
    assert first.startswith("evt_")
    r = await gateway.client.post("/events", headers=key(pub), json=[
        {"event": "payment", "data": 1, "id": "pay-1", "occurredAt": "2026-01-02T03:04:05Z"},
        {"event": "debtinsert", "data": {"debt": 7}, "id": "debt-1"},
    ])
    assert r.status_code == 202
    assert r.json() == {"count": 2, "ids": ["pay-1", "debt-1"]}
    assert await count(gateway, events) == 3
    assert await count(gateway, deliveries) == 2  # only payments have a subscriber
    again = await gateway.client.post("/events", headers=key(pub), json=[
        {"event": "payment", "data": 1, "id": "pay-1"}, {"event": "payment", "id": "pay-2"}])
    assert again.json() == {"count": 2, "ids": ["pay-1", "pay-2"]}
    assert await count(gateway, deliveries) == 3
    # another publisher cannot take over an id
    other = await gateway.new_client("other", "events:publish")
    r = await gateway.client.post("/events", headers=key(other), json={"event": "payment",
                                                                       "id": "pay-1"})
    assert assert_problem(r, 409)["eventId"] == "pay-1"


@pytest.mark.parametrize("body, pointer", [
    ({"event": "nosuch"}, "/event"),
    ({"event": "userlogin"}, "/event"),
    ({"event": "payment", "id": "bad id!"}, "/id"),
    ({"event": "payment", "occurredAt": "yesterday"}, "/occurredAt"),
    ({"event": "payment", "data": "x" * 300_000}, "/data"),
    ([{"event": "payment"}, {"event": "nosuch"}], "/1/event"),
    ([], ""),
])
async def test_bad_events_are_400_and_store_nothing(gateway, body, pointer):
    pub = await gateway.new_client("backoffice", "events:publish")
    r = await gateway.client.post("/events", headers=key(pub), json=body)
    problem = assert_problem(r, 400)
    assert pointer in [e["pointer"] for e in problem["errors"]]
    assert await count(gateway, events) == 0


async def test_batch_over_the_limit(gateway):
    pub = await gateway.new_client("backoffice", "events:publish")
    r = await gateway.client.post("/events", headers=key(pub), json=[{"event": "payment"}] * 1001)
    assert "at most 1000" in assert_problem(r, 400)["detail"]
    r = await gateway.client.post("/events", headers=key(pub), json="payment")
    assert_problem(r, 400)
    assert await count(gateway, events) == 0


async def test_login_events_and_owner_restriction(gateway):
    sub = await gateway.new_client("sub", "webhooks")
    other = await gateway.new_client("other", "webhooks")
    for c in (sub, other):
        await gateway.client.post("/webhooks", headers=key(c), json={
            "events": ["userlogin", "userloginfailed", "jobcomplete"], "url": "http://127.0.0.1:9/h"})
    ok = await gateway.client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": sub["client_id"],
        "client_secret": sub["client_secret"]})
    assert ok.status_code == 200
    bad = await gateway.client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": sub["client_id"],
        "client_secret": "wrong"})
    assert bad.status_code == 401
    await gateway.runtime.events.publish("jobcomplete", {"job": 1}, owner=sub["client_id"])
    async with gateway.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(events.c.event, events.c.data, events.c.source)
                                   .order_by(events.c.created_at))).all()
        per_client = (await conn.execute(select(deliveries.c.client_id, deliveries.c.event))).all()
    assert [r.event for r in rows] == ["userlogin", "userloginfailed", "jobcomplete"]
    assert rows[0].data["clientId"] == sub["client_id"] and rows[0].source == "gateway"
    assert "wrong" not in str(rows[1].data)
    assert sorted(e for c, e in per_client if c == other["client_id"]) == ["userlogin",
                                                                             "userloginfailed"]
    assert sorted(e for c, e in per_client if c == sub["client_id"]) == [
        "jobcomplete", "userlogin", "userloginfailed"]
    with pytest.raises(ValueError):
        await gateway.runtime.events.publish("nosuchevent", {})
