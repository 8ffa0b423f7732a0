"""Secrets as receivers' libraries read them: `whsec_` keys verified with `svix` and
`standardwebhooks` default constructors, generated secrets shown once, rotation with both
signatures during the grace period, and `secretInPayload`. Real receivers, both backends."""

import base64

import orjson
import pytest
import standardwebhooks
from sqlalchemy import update
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError

from servicegate.clock import utcnow
from servicegate.storage.schema import webhooks
from tests.conftest import make_settings
from tests.support.receivers import Receiver
from tests.test_auth_api import assert_problem
from tests.test_webhook_delivery import key, listing, publish, register, until

WHSEC = "whsec_" + base64.b64encode(bytes(range(32))).decode()


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
    gateway.runtime.start_workers()
    gateway.sub = await gateway.new_client("partner", "webhooks")
    gateway.pub = await gateway.new_client("backoffice", "events:publish")
    yield gateway


def verifies(secret, got) -> bool:
    """Both libraries, each with its ordinary constructor, agree on the delivery."""
    try:
        SvixWebhook(secret).verify(got.body, got.headers)
        svix_ok = True
    except WebhookVerificationError:
        svix_ok = False
    try:
        standardwebhooks.Webhook(secret).verify(got.body, got.headers)
        std_ok = True
    except standardwebhooks.WebhookVerificationError:
        std_ok = False
    assert svix_ok == std_ok
    return svix_ok


async def test_whsec_secret_verifies_with_the_default_constructors(hooks, receiver):
    await register(hooks, receiver.url("/w"), secret=WHSEC)
    event_id = await publish(hooks, data={"n": 1})
    (got,) = await receiver.wait_for(1, "/w")
    assert verifies(WHSEC, got)
    assert not verifies("whsec_" + base64.b64encode(bytes(32)).decode(), got)
    # the HMAC key is the decoded bytes, not the text
    assert standardwebhooks.Webhook(bytes(range(32))).verify(got.body, got.headers)["id"] \
        == event_id


async def test_generated_secret_is_answered_once_and_verifies(hooks, receiver):
    r = await hooks.client.post("/webhooks", headers=key(hooks.sub), json={
        "events": ["payment"], "url": receiver.url("/g"), "generateSecret": True})
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    listed = await hooks.client.get("/webhooks", headers=key(hooks.sub))
    assert secret not in listed.text and secret[6:] not in listed.text
    admin = await hooks.client.get("/admin/webhooks", headers={"X-API-Key": hooks.admin_key})
    assert secret not in admin.text and admin.json()["webHooks"][0]["hasSecret"] is True
    # registering the URL again (without generateSecret) answers no secret
    again = await hooks.client.post("/webhooks", headers=key(hooks.sub), json={
        "events": ["debtinsert"], "url": receiver.url("/g")})
    assert "secret" not in again.json()
    await publish(hooks)
    (got,) = await receiver.wait_for(1, "/g")
    assert verifies(secret, got)
    assert orjson.loads(got.body)["secret"] == secret  # in the body, as the reference promises


@pytest.mark.parametrize("body, message", [
    ({"secret": "whsec_not base64!"}, "base64"),
    ({"secret": "whsec_" + base64.b64encode(b"short").decode()}, "at least 24 bytes"),
    ({"secret": "whsec_" + base64.b64encode(bytes(31)).decode().rstrip("=")}, "base64"),
    ({"secret": "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 30).decode()}, "base64"),
    ({"secret": 123456789}, "must be a string"),
    ({"secret": ""}, "1 to 256"),
    ({"secret": "x" * 257}, "1 to 256"),
    ({"secret": WHSEC, "generateSecret": True}, "not both"),
    ({"secretInPayload": "sometimes"}, "true or false"),
])
async def test_bad_secrets_are_a_400_problem_that_does_not_echo_them(hooks, body, message):
    r = await hooks.client.post("/webhooks", headers=key(hooks.sub), json={
        "events": ["payment"], "url": "http://127.0.0.1:9/x", **body})
    problem = assert_problem(r, 400)
    assert message in r.text, problem
    secret = body.get("secret")
    if isinstance(secret, str | int) and secret not in ("", "sometimes"):
        assert str(secret) not in r.text
    assert (await hooks.client.get("/webhooks", headers=key(hooks.sub))).json()["count"] == 0


async def test_plain_secret_keeps_its_meaning(hooks, receiver):
    plain = "whsec-like-but-plain-ü"
    await register(hooks, receiver.url("/p"), secret=plain)
    await publish(hooks)
    (got,) = await receiver.wait_for(1, "/p")
    assert verifies(plain.encode("utf-8"), got)


async def test_rotation_signs_with_both_secrets_during_the_grace_period(hooks, receiver):
    old, new = WHSEC, "whsec_" + base64.b64encode(b"n" * 32).decode()
    url = receiver.url("/rot")
    await register(hooks, url, secret=old)
    await publish(hooks, data={"n": 1})
    (first,) = await receiver.wait_for(1, "/rot")
    assert len(first.headers["webhook-signature"].split()) == 1
    await register(hooks, url, secret=new)  # the partner rotates, the reference's way
    listed = (await hooks.client.get("/webhooks", headers=key(hooks.sub))).json()["webHooks"][0]
    assert "previousSecretExpiresAt" in listed
    await publish(hooks, data={"n": 2})
    second = (await receiver.wait_for(2, "/rot"))[1]
    signatures = second.headers["webhook-signature"].split()
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert verifies(new, second) and verifies(old, second)  # each secret alone verifies
    assert orjson.loads(second.body)["secret"] == new
    # registering the current secret again starts no new rotation
    await register(hooks, url, secret=new)
    await publish(hooks, data={"n": 3})
    third = (await receiver.wait_for(3, "/rot"))[2]
    assert verifies(old, third) and verifies(new, third)
    # the grace period ends: the old secret no longer signs, and is forgotten
    async with hooks.runtime.engine.begin() as conn:
        await conn.execute(update(webhooks).values(previous_secret_until=utcnow()))
    await publish(hooks, data={"n": 4})
    fourth = (await receiver.wait_for(4, "/rot"))[3]
    assert len(fourth.headers["webhook-signature"].split()) == 1
    assert verifies(new, fourth) and not verifies(old, fourth)
    # (the workers' housekeeping may have dropped it already)
    assert await hooks.runtime.webhooks.store.drop_expired_secrets(utcnow()) in (0, 1)
    hook = (await hooks.runtime.webhooks.store.list_for(hooks.sub["client_id"]))[0]
    assert hook.previous_secret is None
    # removing the secret removes both: deliveries go unsigned
    await register(hooks, url, secret=None)
    hook = (await hooks.runtime.webhooks.store.list_for(hooks.sub["client_id"]))[0]
    assert hook.secret is None and hook.previous_secret is None


async def test_rotation_without_grace(hooks, receiver):
    hooks.runtime.webhooks.store.secret_grace = 0
    url = receiver.url("/nograce")
    await register(hooks, url, secret="first-secret")
    await register(hooks, url, secret="second-secret")
    await publish(hooks)
    (got,) = await receiver.wait_for(1, "/nograce")
    assert len(got.headers["webhook-signature"].split()) == 1
    assert verifies(b"second-secret", got)


async def test_secret_in_payload_can_be_turned_off_per_webhook(hooks, receiver):
    await register(hooks, receiver.url("/off"), secret=WHSEC, secretInPayload=False)
    await register(hooks, receiver.url("/on"), secret=WHSEC)
    listed = (await hooks.client.get("/webhooks", headers=key(hooks.sub))).json()["webHooks"]
    assert {h["url"].rsplit("/", 1)[1]: h["secretInPayload"] for h in listed} == {
        "off": False, "on": True}
    await publish(hooks, data={"n": 1})
    (off,) = await receiver.wait_for(1, "/off")
    (on,) = await receiver.wait_for(1, "/on")
    assert "secret" not in orjson.loads(off.body) and verifies(WHSEC, off)
    assert orjson.loads(on.body)["secret"] == WHSEC and verifies(WHSEC, on)
    # registering again without the flag keeps it; with it, changes it
    await register(hooks, receiver.url("/off"), events=["debtinsert"])
    await register(hooks, receiver.url("/on"), secretInPayload=False)
    listed = (await hooks.client.get("/webhooks", headers=key(hooks.sub))).json()["webHooks"]
    assert [h["secretInPayload"] for h in listed] == [False, False]
    await publish(hooks, data={"n": 2})
    await receiver.wait_for(2, "/on")
    assert "secret" not in orjson.loads(receiver.at("/on")[1].body)
    # the test delivery follows the flag too
    r = await hooks.client.post("/webhooks/test", headers=key(hooks.sub),
                                json={"url": receiver.url("/off")})
    assert r.status_code == 200, r.text
    tested = await receiver.wait_for(2, "/off")
    assert "secret" not in orjson.loads(tested[-1].body) and verifies(WHSEC, tested[-1])

    async def settled():
        body = await listing(hooks)
        return body if all(d["status"] == "succeeded" for d in body["deliveries"]) else None
    await until(settled)
