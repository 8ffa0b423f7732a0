"""End to end through `servicegate serve`: hot reload while serving, http/sql/callback examples."""

import hashlib
import hmac
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import GatewayProcess, free_port, gateway_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")


@pytest.fixture
def served(tmp_path):
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    env = gateway_env(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}",
                      SERVICEGATE_DATABASES__DEMO__URL=f"sqlite:///{tmp_path / 'demo.db'}",
                      SG_E2E_SECRET="e2e-secret")
    proc = GatewayProcess(tmp_path, env, free_port())
    proc.cli("demo")  # migrates, creates the demo client, seeds the demo database
    key = proc.create_client("e2e", "services", "callback")["api_key"]
    proc.start()
    try:
        yield proc, definitions, {"X-API-Key": key}
    finally:
        proc.stop()


def test_hot_reload_edit_break_fix_delete(served):
    proc, definitions, auth = served
    path = definitions / "hello.yaml"
    url = f"{proc.url}/services/hello"

    def body():
        r = httpx.get(url, headers=auth, timeout=5)
        return r.json() if r.status_code == 200 else r.status_code

    assert body() == 404
    path.write_text("name: hello\naction: {type: static, body: {v: 1}}\n")
    wait_for(lambda: body() == {"v": 1})
    path.write_text("name: hello\naction: {type: static, body: {v: 2}}\n")
    wait_for(lambda: body() == {"v": 2})
    path.write_text("name: hello\naction: {type: static, body: {v: [}\n")  # broken
    wait_for(lambda: "definition_file_broken" in proc.log())
    assert body() == {"v": 2}  # the last good version keeps serving
    metrics = httpx.get(f"{proc.url}/metrics", timeout=5).text
    assert "servicegate_definition_files_broken 1.0" in metrics
    path.write_text("name: hello\naction: {type: static, body: {v: 3}}\n")
    wait_for(lambda: body() == {"v": 3})
    path.unlink()
    wait_for(lambda: body() == 404)


def test_examples_end_to_end(served, tmp_path):
    proc, definitions, auth = served
    for source in sorted((ROOT / "examples/definitions").glob("*.[yp][ay]*")):
        text = source.read_text()  # as shipped: they follow the gateway's port themselves
        text = text.replace("DEMO_CALLBACK_SECRET", "SG_E2E_SECRET")
        (definitions / source.name).write_text(text)
    base = f"{proc.url}/services"
    wait_for(lambda: httpx.get(f"{base}/customer-overview/1", headers=auth).status_code == 200)

    r = httpx.get(f"{base}/hello/x?name=Ada", headers=auth)
    assert r.json()["greeting"] == "Hello Ada!"
    r = httpx.get(f"{base}/health", headers={**auth, "X-Request-Id": "e2e-1"})
    assert r.json() == {"status": "ok"} and r.headers["ratelimit-limit"] == "20"
    assert r.headers["x-request-id"] == "e2e-1"
    assert httpx.get(f"{base}/gateway-status", headers=auth).json()["ready"] is True
    assert [c["id"] for c in httpx.get(f"{base}/customers?city=Lund", headers=auth).json()] == [1, 3]
    assert httpx.get(f"{base}/customer/99", headers=auth).status_code == 404
    r = httpx.post(f"{base}/score", json={"balance": 4200, "days_late": 30}, headers=auth)
    assert r.json() == {"score": 87, "band": "high"}
    assert httpx.get(f"{base}/customer-overview/1", headers=auth).json()["risk"] == 87
    r = httpx.post(f"{proc.url}/callback/echo?x=1", json={"a": 1}, headers=auth)
    assert r.status_code == 201 and r.json() == {"received": {"a": 1}, "query": {"x": "1"}}
    body = b'{"invoice":"INV-1","status":"paid"}'
    sig = hmac.new(b"e2e-secret", body, hashlib.sha256).hexdigest()
    r = httpx.post(f"{proc.url}/callback/payment-status", content=body,
                   headers={"X-Signature": f"sha256={sig}", "Content-Type": "application/json"})
    assert r.json() == {"accepted": True, "invoice": "INV-1", "status": "paid",
                        "eventId": "payment-INV-1-paid"}
    r = httpx.post(f"{proc.url}/callback/payment-status", content=body,
                   headers={"X-Signature": "sha256=00"})
    assert r.status_code == 401
    signed_reports = [
        (b"invoice=INV-2&status=failed", "application/x-www-form-urlencoded", 200),
        (b"", None, 400),
        (b'{"invoice":"INV-3"}', "application/json", 400),
    ]
    for sent, kind, status in signed_reports:
        sig = hmac.new(b"e2e-secret", sent, hashlib.sha256).hexdigest()
        headers = {"X-Signature": f"sha256={sig}", **({"Content-Type": kind} if kind else {})}
        r = httpx.post(f"{proc.url}/callback/payment-status", content=sent, headers=headers)
        assert r.status_code == status, r.text  # a signed but incomplete report: 400, not 500
    assert httpx.get(f"{base}/hello/..%2F..%2Fmetrics", headers=auth).status_code == 400
