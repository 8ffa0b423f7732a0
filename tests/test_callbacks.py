"""/callback/{name}: content types, auth modes, HMAC and Standard Webhooks signatures."""

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from tests.test_auth_api import assert_problem

ECHO = """
name: cb
expose: [callback]
auth: {mode: %s}
action:
  type: static
  body:
    raw: "{{ raw }}"
    body: "{{ body }}"
    form: "{{ form }}"
    query: "{{ query }}"
    principal: "{{ principal.client_id if principal else none }}"
"""


async def test_json_form_xml_and_text_bodies(dgw):
    await dgw.define("cb.yaml", ECHO % "required")
    r = await dgw.call("POST", "/callback/cb?a=1", json={"x": 1})
    assert r.status_code == 200
    assert r.json()["body"] == {"x": 1} and r.json()["query"] == {"a": "1"}
    r = await dgw.call("POST", "/callback/cb", data={"status": "paid", "id": "7"})
    assert r.json()["form"] == {"status": "paid", "id": "7"}
    assert r.json()["body"] == {"status": "paid", "id": "7"}
    xml = "<payment><id>7</id></payment>"
    r = await dgw.call("POST", "/callback/cb", content=xml,
                       headers={"Content-Type": "application/xml"})
    assert r.json()["raw"] == xml and r.json()["body"] is None and r.json()["form"] is None
    r = await dgw.call("POST", "/callback/cb", content="hello",
                       headers={"Content-Type": "text/plain"})
    assert r.json()["raw"] == "hello"
    r = await dgw.call("POST", "/callback/cb", content='{"x": ',
                       headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


async def test_modes(dgw):
    await dgw.define("cb.yaml", ECHO % "required")
    assert_problem(await dgw.client.post("/callback/cb"), 401)
    services_only = await dgw.runtime.clients.create("svc", ["services"])
    r = await dgw.client.post("/callback/cb", headers={"X-API-Key": services_only.api_key})
    assert_problem(r, 403)
    await dgw.define("cb.yaml", ECHO % "optional")
    r = await dgw.client.post("/callback/cb")
    assert r.status_code == 200 and r.json()["principal"] is None
    r = await dgw.call("POST", "/callback/cb")
    assert r.json()["principal"].startswith("cl_")
    r = await dgw.client.post("/callback/cb", headers={"X-API-Key": "sgk_wrong"})
    assert_problem(r, 401)
    await dgw.define("cb.yaml", ECHO % "none")
    r = await dgw.client.get("/callback/cb")
    assert r.status_code == 200


async def test_unknown_callback_and_service_only(dgw):
    assert_problem(await dgw.call("POST", "/callback/nope"), 404)
    await dgw.define("s.yaml", "name: svc\naction: {type: static}\n")
    assert_problem(await dgw.call("POST", "/callback/svc"), 404)
    assert_problem(await dgw.call("PUT", "/callback/svc"), 405)


async def test_callback_ping_keeps_precedence(dgw):
    assert (await dgw.call("GET", "/callback/ping")).json() == {}


HMAC = """
name: signed
expose: [callback]
methods: [POST]
auth:
  mode: none
  signature: {scheme: hmac-sha256, header: X-Sig, encoding: %s, prefix: "%s",
              secret_env: SG_TEST_HMAC}
action: {type: static, body: {ok: true}}
"""


@pytest.mark.parametrize("encoding,prefix", [("hex", "sha256="), ("base64", "")])
async def test_hmac_signature(dgw, monkeypatch, encoding, prefix):
    monkeypatch.setenv("SG_TEST_HMAC", "s3cret")
    await dgw.define("s.yaml", HMAC % (encoding, prefix))
    body = b'{"invoice": "INV-1"}'
    digest = hmac.new(b"s3cret", body, hashlib.sha256).digest()
    sig = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    headers = {"X-Sig": prefix + sig, "Content-Type": "application/json"}
    r = await dgw.client.post("/callback/signed", content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"ok": True}
    r = await dgw.client.post("/callback/signed", content=body + b" ", headers=headers)
    assert_problem(r, 401)
    r = await dgw.client.post("/callback/signed", content=body)
    assert "missing" in assert_problem(r, 401)["detail"]
    r = await dgw.client.post("/callback/signed", content=body, headers={"X-Sig": "zz"})
    assert_problem(r, 401)


async def test_missing_secret_is_500_not_open(dgw, monkeypatch):
    monkeypatch.delenv("SG_TEST_HMAC", raising=False)
    await dgw.define("s.yaml", HMAC % ("hex", ""))
    r = await dgw.client.post("/callback/signed", content=b"{}", headers={"X-Sig": "00"})
    assert_problem(r, 500)


STANDARD = """
name: std
expose: [callback]
methods: [POST]
auth:
  mode: none
  signature: {scheme: standard-webhooks, secret_env: SG_TEST_WHSEC, tolerance: 1m}
action: {type: static, body: "{{ body }}"}
"""


async def test_standard_webhooks_signature(dgw, monkeypatch):
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    monkeypatch.setenv("SG_TEST_WHSEC", secret)
    await dgw.define("s.yaml", STANDARD)
    body = '{"event":"paid"}'

    def headers(stamp: int, msg_id: str = "msg_1") -> dict:
        sig = Webhook(secret).sign(msg_id, datetime.fromtimestamp(stamp, tz=UTC), body)
        return {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
                "webhook-signature": f"v1,bogus {sig}", "Content-Type": "application/json"}

    now = int(time.time())
    r = await dgw.client.post("/callback/std", content=body, headers=headers(now))
    assert r.status_code == 200 and r.json() == {"event": "paid"}
    r = await dgw.client.post("/callback/std", content=body, headers=headers(now - 120))
    assert "tolerance" in assert_problem(r, 401)["detail"]
    tampered = headers(now)
    tampered["webhook-id"] = "msg_2"
    assert_problem(await dgw.client.post("/callback/std", content=body, headers=tampered), 401)
    assert_problem(await dgw.client.post("/callback/std", content=body), 401)


async def test_callback_rate_limit_by_ip_when_anonymous(dgw):
    await dgw.define("r.yaml", """
        name: anon
        expose: [callback]
        auth: {mode: none}
        rate_limit: {requests: 1, per: 1h}
        action: {type: static}
    """)
    assert (await dgw.client.post("/callback/anon")).status_code == 200
    r = await dgw.client.post("/callback/anon")
    assert_problem(r, 429)
    assert "retry-after" in r.headers
