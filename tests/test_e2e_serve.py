"""End to end: `servicegate` as a user runs it, in subprocesses on free ports."""

import json
import os
import signal
import stat
import time

import httpx
import pytest

from tests.support.processes import (
    SERVICEGATE,
    GatewayProcess,
    free_port,
    gateway_env,
    run_command,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def gw(tmp_path, sqlite_url):
    proc = GatewayProcess(tmp_path, gateway_env(tmp_path, sqlite_url,
                                                SERVICEGATE_AUTH__CACHE_TTL="1s"), free_port())
    yield proc
    proc.stop()


def test_demo_then_serve_then_ping(gw):
    out = gw.cli("demo").stdout
    saved = json.loads((gw.workdir / "var" / "demo-client.json").read_text())
    assert saved["api_key"] in out and saved["client_secret"] in out
    assert stat.S_IMODE((gw.workdir / "var" / "demo-client.json").stat().st_mode) == 0o600
    # A second run reuses the same demo client.
    assert saved["api_key"] in gw.cli("demo").stdout

    gw.start()
    r = httpx.get(f"{gw.url}/services/ping", headers={"X-API-Key": saved["api_key"]})
    assert r.status_code == 200 and r.text == "{}"
    tok = httpx.post(f"{gw.url}/oauth2/token", data={"grant_type": "client_credentials"},
                     auth=(saved["client_id"], saved["client_secret"]))
    assert tok.status_code == 200, tok.text
    r = httpx.get(f"{gw.url}/webhooks/ping",
                  headers={"Authorization": f"Bearer {tok.json()['access_token']}"})
    assert r.status_code == 200 and r.json() == {}
    # The demo identities answer identity search at once.
    r = httpx.get(f"{gw.url}/services/identity", headers={"X-API-Key": saved["api_key"]},
                  params={"$filter": "juridicalType eq 2", "$top": "1"})
    assert r.status_code == 200 and r.json()["total"] > 0 and r.json()["count"] == 1
    keyfile = next((gw.workdir / "keys").glob("*.pem"))
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert gw.stop() == 0  # SIGTERM: graceful
    assert '"stopped"' in gw.log()


def test_cli_revocation_reaches_running_gateway_within_seconds(gw):
    creds = gw.create_client("partner", "services")
    gw.start()
    h = {"X-API-Key": creds["api_key"]}
    assert httpx.get(f"{gw.url}/services/ping", headers=h).status_code == 200
    listed = json.loads(gw.cli("clients", "list", "--json").stdout)
    assert [c["name"] for c in listed] == ["partner"]
    shown = json.loads(gw.cli("clients", "show", "partner").stdout)
    key_id = shown["keys"][0]["id"]
    gw.cli("clients", "revoke-key", "partner", key_id)
    deadline = time.monotonic() + 5
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = httpx.get(f"{gw.url}/services/ping", headers=h).status_code
        time.sleep(0.2)
    assert status == 401
    assert gw.cli("clients", "revoke-key", "partner", key_id, check=False).returncode == 1


def test_cli_client_commands(gw):
    creds = gw.create_client("ops", "services", "webhooks")
    # camelCase as the admin API prints it, and the older snake_case keys scripts may read
    assert set(creds) >= {"clientId", "clientSecret", "apiKey", "keyId",
                          "client_id", "client_secret", "api_key"}
    assert creds["clientId"] == creds["client_id"] and creds["apiKey"] == creds["api_key"]
    added = gw.cli("clients", "add-key", "ops").stdout
    assert "sgk_" in added
    assert "disabled" in gw.cli("clients", "disable", "ops").stdout
    assert json.loads(gw.cli("clients", "show", "ops").stdout)["enabled"] is False
    assert "enabled" in gw.cli("clients", "enable", "ops").stdout
    assert gw.cli("clients", "create", "ops", check=False).returncode == 1
    assert gw.cli("clients", "create", "bad", "--scope", "bad!scope", check=False).returncode == 2
    gw.cli("clients", "delete", "ops", "--yes")
    assert gw.cli("clients", "show", "ops", check=False).returncode == 1


def test_invalid_configuration_stops_startup_naming_the_key(gw):
    env = dict(gw.env, SERVICEGATE_SERVER__PORT="eighty")
    r = run_command([SERVICEGATE, "serve"], cwd=gw.workdir, env=env, timeout=30)
    assert r.returncode == 2
    assert "server.port" in r.stderr and "SERVICEGATE_SERVER__PORT" in r.stderr


def test_keys_rotate_keeps_old_tokens_valid(gw):
    creds = gw.create_client("rot", "services")
    gw.start()
    auth = (creds["client_id"], creds["client_secret"])
    data = {"grant_type": "client_credentials"}
    old = httpx.post(f"{gw.url}/oauth2/token", data=data, auth=auth).json()["access_token"]
    before = {k["kid"] for k in httpx.get(f"{gw.url}/.well-known/jwks.json").json()["keys"]}
    assert "signing with" in gw.cli("keys", "rotate").stdout
    time.sleep(5.5)  # the running gateway re-reads the key directory every few seconds
    after = {k["kid"] for k in httpx.get(f"{gw.url}/.well-known/jwks.json").json()["keys"]}
    assert before < after and len(after) == 2
    new = httpx.post(f"{gw.url}/oauth2/token", data=data, auth=auth).json()["access_token"]
    from jwt import get_unverified_header

    assert get_unverified_header(new)["kid"] in after - before
    for token in (old, new):
        r = httpx.get(f"{gw.url}/services/ping", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200


def test_two_workers_serve_and_shut_down(gw):
    creds = gw.create_client("multi", "services")
    gw.start("--workers", "2")
    for _ in range(20):
        r = httpx.get(f"{gw.url}/services/ping", headers={"X-API-Key": creds["api_key"]})
        assert r.status_code == 200
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert "servicegate_http_requests_total" in metrics
    os.killpg(gw.proc.pid, signal.SIGTERM)
    assert gw.proc.wait(timeout=30) == 0
