"""Tokens from an external OpenID provider, verified against its JWKS served by a real server."""

import time

import httpx
import jwt as pyjwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from servicegate.app import create_app
from servicegate.runtime import Runtime
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import upgrade
from tests.conftest import make_settings
from tests.support.processes import free_port
from tests.test_auth_api import assert_problem

ISSUER = "https://login.partner.test/"


@pytest.fixture
async def jwks_server():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": "ext-1", "alg": "RS256", "use": "sig"})
    hits = []

    async def handler(request):
        hits.append(request.path)
        return web.json_response({"keys": [jwk]})

    app = web.Application()
    app.router.add_get("/jwks", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield key, f"http://127.0.0.1:{port}/jwks", hits
    await runner.cleanup()


@pytest.fixture
async def client(tmp_path, sqlite_url, jwks_server):
    """An in-process gateway trusting the JWKS server's issuer."""
    settings = make_settings(tmp_path, sqlite_url, auth={
        "issuers": [{"issuer": ISSUER, "jwks_url": jwks_server[1],
                     "audience": "servicegate-api"}]})
    engine = create_engine(sqlite_url)
    await upgrade(engine)
    runtime = await Runtime.start(settings, engine=engine)
    app = create_app(settings, runtime=runtime)
    app.state.runtime = runtime
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gw") as http:
            yield http
    finally:
        await runtime.stop()


async def test_external_tokens(client, jwks_server):
    key, _, hits = jwks_server
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "partner-42", "aud": "servicegate-api", "iat": now,
              "exp": now + 300, "scp": ["services", "webhooks"]}

    def sign(c, kid="ext-1", k=key, alg="RS256"):
        return pyjwt.encode(c, k, algorithm=alg, headers={"kid": kid})

    async def ping(token):
        return await client.get("/services/ping", headers={"Authorization": f"Bearer {token}"})

    r = await ping(sign(claims))
    assert r.status_code == 200 and r.json() == {}
    assert (await ping(sign(claims))).status_code == 200
    assert hits == ["/jwks"]  # fetched once, then cached

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (
        sign({**claims, "aud": "servicegate"}),
        sign({**claims, "exp": now - 600}),
        sign(claims, k=other),
        sign(claims, kid="unknown-kid"),
        sign({**claims, "iss": "https://unconfigured.test/"}),
    ):
        assert_problem(await ping(bad), 401)
    r = await client.get("/admin/clients", headers={"Authorization": f"Bearer {sign(claims)}"})
    assert_problem(r, 403)


async def test_external_principal_owns_webhooks(client, jwks_server):
    from servicegate.auth.authenticator import external_principal_id

    key = jwks_server[0]
    now = int(time.time())
    token = pyjwt.encode({"iss": ISSUER, "sub": "x" * 80, "aud": "servicegate-api", "iat": now,
                          "exp": now + 300, "scope": "webhooks"}, key, algorithm="RS256",
                         headers={"kid": "ext-1"})
    h = {"Authorization": f"Bearer {token}"}
    r = await client.post("/webhooks", headers=h, json={
        "events": ["payment"], "url": "http://127.0.0.1:9/hook", "secret": "s"})
    assert r.status_code == 200, r.text
    listed = (await client.get("/webhooks", headers=h)).json()
    assert listed["count"] == 1 and listed["webHooks"][0]["events"] == ["payment"]
    principal_id = external_principal_id(ISSUER, "x" * 80)
    assert len(principal_id) <= 64 and principal_id.startswith("ext-")
    assert external_principal_id("https://other.test/", "x" * 80) != principal_id
