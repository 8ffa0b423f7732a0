"""Authorization server metadata (RFC 8414): discovered and used by real client libraries."""

import httpx
import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from servicegate.app import create_app
from servicegate.runtime import Runtime
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import upgrade
from tests.conftest import make_settings
from tests.support.processes import GatewayProcess, free_port, gateway_env

WELL_KNOWN = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


async def test_metadata_is_public_and_complete(gateway):
    first, second = [await gateway.client.get(path) for path in WELL_KNOWN]
    assert first.status_code == second.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    meta = first.json()
    assert second.json() == meta
    # `[auth] issuer` is not a URL here: the issuer is the address the client used
    assert meta["issuer"] == "http://gateway"
    assert meta["token_endpoint"] == "http://gateway/oauth2/token"
    assert meta["jwks_uri"] == "http://gateway/.well-known/jwks.json"
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert meta["token_endpoint_auth_methods_supported"] == ["client_secret_basic",
                                                             "client_secret_post"]
    assert {"services", "identity:read", "admin", "webhooks"} <= set(meta["scopes_supported"])
    assert meta["response_types_supported"]


async def test_scopes_supported_lists_each_definition(dgw):
    await dgw.define("crm.yaml", "name: crm\naction: {type: static}\n")
    meta = (await dgw.client.get(WELL_KNOWN[0])).json()
    assert "services:crm" in meta["scopes_supported"]


async def test_client_discovers_the_token_endpoint_under_a_base_path(tmp_path, sqlite_url,
                                                                     monkeypatch):
    settings = make_settings(tmp_path, sqlite_url, server={"base_path": "/gw"})
    engine = create_engine(sqlite_url)
    await upgrade(engine)
    runtime = await Runtime.start(settings, engine=engine)
    app = create_app(settings, runtime=runtime)
    created = await runtime.clients.create("svc", ["services"])
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as http:
            assert (await http.get("/.well-known/oauth-authorization-server")).status_code == 404
            meta = (await http.get("/gw/.well-known/oauth-authorization-server")).json()
        assert meta["issuer"] == "http://gw.test/gw"
        assert meta["token_endpoint"] == "http://gw.test/gw/oauth2/token"
        assert meta["jwks_uri"] == "http://gw.test/gw/.well-known/jwks.json"
        # RFC 8414 §3.1: for an issuer with a path, the well-known part comes first
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as http:
            for name in ("oauth-authorization-server", "openid-configuration"):
                inserted = await http.get(f"/.well-known/{name}/gw")
                assert inserted.status_code == 200 and inserted.json() == meta
        monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # http on the test's loopback
        AuthorizationServerMetadata(meta).validate()
        async with AsyncOAuth2Client(created.client.id, created.client_secret,
                                     token_endpoint_auth_method="client_secret_post",
                                     transport=transport) as oauth:
            token = await oauth.fetch_token(meta["token_endpoint"],
                                            grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["scope"] == "services"
    finally:
        await runtime.stop()


@pytest.mark.e2e
def test_issuer_url_discovery_token_and_jwks_over_http(tmp_path, database_url, engine,
                                                       monkeypatch):
    """A configured issuer URL is the metadata's `issuer` and every token's `iss`; a client
    given only that URL finds the token endpoint and the keys that verify the token."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    gw = GatewayProcess(tmp_path, gateway_env(tmp_path, database_url,
                                              SERVICEGATE_AUTH__ISSUER=issuer), port)
    creds = gw.create_client("discovering", "services")
    gw.start()
    try:
        meta = httpx.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
        assert meta["issuer"] == issuer
        monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
        AuthorizationServerMetadata(meta).validate()
        for method in meta["token_endpoint_auth_methods_supported"]:
            with OAuth2Client(creds["client_id"], creds["client_secret"],
                              token_endpoint_auth_method=method, timeout=10) as oauth:
                token = oauth.fetch_token(meta["token_endpoint"],
                                          grant_type="client_credentials")
            access = token["access_token"]
            key = pyjwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(access)
            claims = pyjwt.decode(access, key.key, algorithms=["ES256"], audience="servicegate",
                                  issuer=meta["issuer"])
            assert claims["sub"] == creds["client_id"] and claims["scope"] == "services"
            # the token the client discovered its way to is accepted by the gateway
            r = httpx.get(issuer + "/services/ping", timeout=10,
                          headers={"Authorization": f"Bearer {access}"})
            assert r.status_code == 200, r.text
    finally:
        gw.stop()
