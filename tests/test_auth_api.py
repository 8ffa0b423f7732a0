"""Authentication, scopes and the OAuth2 token endpoint, in process, on both backends."""

import base64
import json
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet as JoseKeySet

PROBLEM = "application/problem+json"


def assert_problem(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == PROBLEM
    body = resp.json()
    for member in ("type", "title", "status", "detail", "instance"):
        assert member in body
    assert body["status"] == status
    return body


async def token_for(gw, creds, **form):
    data = {"grant_type": "client_credentials", "client_id": creds["client_id"],
            "client_secret": creds["client_secret"], **form}
    return await gw.client.post("/oauth2/token", data=data)


@pytest.mark.parametrize("group", ["services", "callback", "webhooks"])
async def test_ping_with_api_key_header_and_bearer(gateway, group):
    creds = await gateway.new_client("p", "services")
    r = await gateway.client.get(f"/{group}/ping", headers={"X-API-Key": creds["api_key"]})
    assert r.status_code == 200 and r.content == b"{}"
    assert r.headers["content-type"] == "application/json"
    r = await gateway.client.get(f"/{group}/ping",
                                 headers={"Authorization": f"Bearer {creds['api_key']}"})
    assert r.status_code == 200 and r.json() == {}


async def test_ping_without_credentials(gateway):
    r = await gateway.client.get("/services/ping")
    assert_problem(r, 401)
    assert "Bearer" in r.headers["www-authenticate"]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "sgk_unknown"},
        {"Authorization": "Bearer sgk_unknown"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJzZXJ2aWNlZ2F0ZSJ9."},
        {"X-API-Key": "x" * 500},
    ],
)
async def test_bad_credentials(gateway, headers):
    r = await gateway.client.get("/services/ping", headers=headers)
    assert_problem(r, 401)


async def test_request_id_is_echoed_or_generated(gateway):
    creds = await gateway.new_client("rid", "services")
    r = await gateway.client.get("/services/ping",
                                 headers={"X-API-Key": creds["api_key"], "X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await gateway.client.get("/services/ping", headers={"X-Request-Id": "bad id;drop"})
    assert r.headers["x-request-id"] != "bad id;drop" and len(r.headers["x-request-id"]) == 32
    assert r.json()["traceId"] == r.headers["x-request-id"]


async def test_token_issue_and_use_verified_independently(gateway):
    creds = await gateway.new_client("tok", "services", "webhooks")
    r = await token_for(gateway, creds)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert set(body["scope"].split()) == {"services", "webhooks"}

    # Verify with joserfc against the served JWKS, independently of our own code.
    jwks = (await gateway.client.get("/.well-known/jwks.json")).json()
    keyset = JoseKeySet.import_key_set(jwks)
    decoded = jose_jwt.decode(body["access_token"], keyset, algorithms=["ES256"])
    claims = decoded.claims
    assert decoded.header["alg"] == "ES256"
    assert claims["sub"] == creds["client_id"] and claims["aud"] == "servicegate"
    assert claims["iss"] == "servicegate" and claims["exp"] > time.time()
    for claim in ("iat", "jti", "scope"):
        assert claim in claims

    r = await gateway.client.get("/webhooks/ping",
                                 headers={"Authorization": f"Bearer {body['access_token']}"})
    assert r.status_code == 200 and r.json() == {}


async def test_token_with_basic_auth_and_narrowed_scope(gateway):
    creds = await gateway.new_client("basic", "services", "webhooks")
    basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
    r = await gateway.client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "services:get-customer"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "services:get-customer"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({}, 400, "invalid_request"),
        ({"grant_type": "client_credentials", "scope": "admin"}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", "client_secret": "wrong"}, 401, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": "cl_nobody"}, 401, "invalid_client"),
    ],
)
async def test_token_errors(gateway, form, status, error):
    creds = await gateway.new_client("errs", "services")
    data = {"client_id": creds["client_id"], "client_secret": creds["client_secret"], **form}
    if not form:
        data = {"client_id": creds["client_id"], "client_secret": creds["client_secret"]}
    r = await gateway.client.post("/oauth2/token", data=data)
    body = assert_problem(r, status)
    assert body["error"] == error
    assert r.headers["cache-control"] == "no-store"
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Basic")


async def test_token_endpoint_refuses_json_and_malformed_form(gateway):
    r = await gateway.client.post("/oauth2/token", json={"grant_type": "client_credentials"})
    assert assert_problem(r, 400)["error"] == "invalid_request"
    r = await gateway.client.post(
        "/oauth2/token", content=b"grant_type=client_credentials&grant_type=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert assert_problem(r, 400)["error"] == "invalid_request"


async def test_disabled_client_loses_token_and_key_at_once(gateway):
    creds = await gateway.new_client("dis", "services")
    access = (await token_for(gateway, creds)).json()["access_token"]
    for h in ({"X-API-Key": creds["api_key"]}, {"Authorization": f"Bearer {access}"}):
        assert (await gateway.client.get("/services/ping", headers=h)).status_code == 200
    admin = {"X-API-Key": gateway.admin_key}
    r = await gateway.client.patch(f"/admin/clients/{creds['client_id']}", json={"enabled": False},
                                   headers=admin)
    assert r.status_code == 200 and r.json()["enabled"] is False
    for h in ({"X-API-Key": creds["api_key"]}, {"Authorization": f"Bearer {access}"}):
        assert_problem(await gateway.client.get("/services/ping", headers=h), 401)
    r = await token_for(gateway, creds)
    assert assert_problem(r, 401)["error"] == "invalid_client"


def _forge(claims, key=None, alg="ES256", kid="forged"):
    key = key or ec.generate_private_key(ec.SECP256R1())
    return pyjwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


async def test_forged_expired_and_wrong_audience_tokens(gateway):
    creds = await gateway.new_client("forge", "services")
    now = int(time.time())
    good = {"iss": "servicegate", "sub": creds["client_id"], "aud": "servicegate",
            "iat": now, "exp": now + 60, "scope": "services"}
    keyset = gateway.runtime.keyset
    real_key, kid = keyset.signing_key, keyset.current_kid
    cases = [
        _forge(good),  # unknown key
        _forge(good, real_key, kid="nope"),
        _forge({**good, "exp": now - 120}, real_key, kid=kid),  # expired
        _forge({**good, "aud": "someone-else"}, real_key, kid=kid),  # wrong audience
        _forge({**good, "iss": "https://evil.example"}, real_key, kid=kid),  # unknown issuer
        _forge(good, "secret-secret-secret-secret-32b!", alg="HS256", kid=kid),  # alg confusion
    ]
    for token in cases:
        r = await gateway.client.get("/services/ping", headers={"Authorization": f"Bearer {token}"})
        assert_problem(r, 401)
    ok = _forge(good, real_key, kid=kid)
    r = await gateway.client.get("/services/ping", headers={"Authorization": f"Bearer {ok}"})
    assert r.status_code == 200


async def test_scope_missing_is_403(gateway):
    creds = await gateway.new_client("weak", "services")
    r = await gateway.client.get("/admin/clients", headers={"X-API-Key": creds["api_key"]})
    body = assert_problem(r, 403)
    assert body["missingScopes"] == ["admin"]


async def test_token_never_grants_more_than_client_holds_now(gateway):
    creds = await gateway.new_client("shrink", "services", "admin")
    access = (await token_for(gateway, creds)).json()["access_token"]
    admin = {"X-API-Key": gateway.admin_key}
    await gateway.client.patch(f"/admin/clients/{creds['client_id']}",
                               json={"scopes": ["services"]}, headers=admin)
    r = await gateway.client.get("/admin/clients", headers={"Authorization": f"Bearer {access}"})
    assert_problem(r, 403)


def test_jwt_header_decodes():
    token = _forge({"iss": "x"})
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "ES256"


async def test_api_key_outcomes_are_cached_principal_and_refusal_alike(gateway):
    from servicegate.auth.authenticator import Unauthenticated

    creds = await gateway.new_client("cached", "services")
    auth = gateway.runtime.authenticator
    first = await auth.authenticate(creds["api_key"], None)
    assert first.client_id == creds["client_id"] and first.scopes == frozenset({"services"})
    assert await auth.authenticate(creds["api_key"], None) is first  # a hit builds nothing
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="invalid API key"):
            await auth.authenticate(creds["api_key"] + "x", None)


async def test_api_key_hashed_once_and_held_no_longer_than_the_cache_ttl(gateway, monkeypatch):
    import asyncio

    from cachetools import TTLCache

    from servicegate.auth import credentials

    creds = await gateway.new_client("cached", "services")
    authenticator = gateway.runtime.authenticator
    keys = TTLCache(100, 0.2)
    monkeypatch.setattr(authenticator, "_keys", keys)
    monkeypatch.setattr(authenticator, "cache_ttl", 0.2)
    digests = []
    real_digest = credentials.key_digest
    monkeypatch.setattr(credentials, "key_digest",
                        lambda key: digests.append(key) or real_digest(key))
    for _ in range(3):
        r = await gateway.client.get("/services/ping", headers={"X-API-Key": creds["api_key"]})
        assert r.status_code == 200
    assert digests == [creds["api_key"]]  # computed on the miss only
    assert len(keys) == 1
    deadline = asyncio.get_running_loop().time() + 5
    while len(keys):  # the presented key is dropped once its entry expired
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    r = await gateway.client.get("/services/ping", headers={"X-API-Key": creds["api_key"]})
    assert r.status_code == 200 and len(digests) == 2


async def test_repeated_credential_headers_use_the_first_value(gateway):
    good = (await gateway.new_client("first", "services"))["api_key"]
    headers = [("X-API-Key", good), ("X-API-Key", "sgk_unknown")]
    r = await gateway.client.get("/services/ping", headers=headers)
    assert r.status_code == 200
    r = await gateway.client.get("/services/ping", headers=list(reversed(headers)))
    assert_problem(r, 401)


async def test_concurrent_misses_for_one_key_share_one_lookup(gateway, monkeypatch):
    import asyncio

    from servicegate.auth.authenticator import Unauthenticated

    creds = await gateway.new_client("stampede", "services")
    auth = gateway.runtime.authenticator
    store = auth.store
    lookups = []
    real = store.by_key_digest

    async def counted(digest):  # the real store, counted and slowed a little
        lookups.append(digest)
        await asyncio.sleep(0.05)
        return await real(digest)

    monkeypatch.setattr(store, "by_key_digest", counted)
    auth.forget_all()
    found = await asyncio.gather(*(auth.authenticate(creds["api_key"], None) for _ in range(20)))
    assert len(lookups) == 1
    assert {p.client_id for p in found} == {creds["client_id"]}
    results = await asyncio.gather(*(auth.authenticate("sgk_nobody", None) for _ in range(5)),
                                   return_exceptions=True)
    assert len(lookups) == 2 and all(isinstance(r, Unauthenticated) for r in results)


async def test_token_narrowed_to_an_implied_scope_calls_that_definition(gateway, settings):
    """`services` implies `services:<name>`: a token narrowed to it is usable, and a token
    that lacks a scope is told so (not its client)."""
    directory = settings.definitions.dir
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("hello", "other"):
        (directory / f"{name}.yaml").write_text(
            f"name: {name}\nmethods: [GET]\naction: {{type: static, body: {{name: {name}}}}}\n")
    report = await gateway.runtime.definitions.reload()
    assert not report.problems, [str(p) for p in report.problems]
    creds = await gateway.new_client("narrow", "services")
    r = await token_for(gateway, creds, scope="services:hello")
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "services:hello"
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await gateway.client.get("/services/hello", headers=bearer)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "hello"}
    r = await gateway.client.get("/services/other", headers=bearer)
    body = assert_problem(r, 403)
    assert body["detail"] == "this token lacks the scope services:other"
    assert body["missingScopes"] == ["services:other"]
