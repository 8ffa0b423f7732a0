"""Problems for framework errors, size limits, admin API, metrics, OpenAPI and docs."""

import pytest

from tests.test_auth_api import assert_problem


async def test_unknown_route_and_wrong_method(gateway):
    assert_problem(await gateway.client.get("/no/such/thing"), 404)
    r = await gateway.client.delete("/healthz")
    body = assert_problem(r, 405)
    assert "GET" in r.headers["allow"] and "DELETE" in body["detail"]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/services/ping"), ("DELETE", "/services/ping"), ("POST", "/callback/ping"),
    ("PUT", "/webhooks/ping"), ("POST", "/services/identity"), ("PATCH", "/services/identity"),
])
async def test_reserved_paths_answer_other_methods_405(gateway, method, path):
    """A fixed path answers every method itself: a later `/services/{name}` or
    `/callback/{name}` route must not take it (and report a definition named 'ping' or
    'identity' missing)."""
    r = await gateway.client.request(method, path, headers={"X-API-Key": gateway.admin_key})
    body = assert_problem(r, 405)
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD"} and method in body["detail"]
    assert (await gateway.client.get(path.replace("identity", "ping"),
                                     headers={"X-API-Key": gateway.admin_key})).status_code == 200


async def test_framework_errors_and_crashes_carry_the_request_id(gateway):
    # Starlette's error middlewares answer these with the handlers of web/errors.py.
    from starlette.requests import Request
    from starlette.routing import Route

    async def boom(request: Request):
        raise RuntimeError("secret-ish internals")

    app = gateway.client._transport.app
    app.router.routes.append(Route("/test-only/boom", boom, methods=["GET"]))
    r = await gateway.client.get("/no/such/thing", headers={"X-Request-Id": "rid-404"})
    assert assert_problem(r, 404)["traceId"] == "rid-404"
    assert r.headers["x-request-id"] == "rid-404"
    r = await gateway.client.get("/test-only/boom", headers={"X-Request-Id": "rid-500"})
    body = assert_problem(r, 500)
    assert body["traceId"] == "rid-500" and "secret-ish" not in r.text
    assert r.headers["x-request-id"] == "rid-500"
    r = await gateway.client.get("/test-only/boom")  # the next request is unaffected
    assert_problem(r, 500)
    assert (await gateway.client.get("/healthz")).status_code == 200


async def test_oversized_body_is_413(gateway):
    limit = gateway.runtime.settings.limits.max_body_bytes
    r = await gateway.client.post("/admin/clients", content=b"x" * (limit + 1),
                                  headers={"X-API-Key": gateway.admin_key})
    assert assert_problem(r, 413)["limit"] == limit


async def test_oversized_chunked_body_is_413(gateway):
    limit = gateway.runtime.settings.limits.max_body_bytes

    async def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536

    r = await gateway.client.post("/admin/clients", content=chunks(),
                                  headers={"X-API-Key": gateway.admin_key})
    assert_problem(r, 413)
    assert (await gateway.client.get("/admin/clients",
                                     headers={"X-API-Key": gateway.admin_key})).json()["count"] == 1


async def test_admin_clients_crud(gateway):
    h = {"X-API-Key": gateway.admin_key}
    r = await gateway.client.post("/admin/clients", json={"name": "partner", "scopes": ["services"]},
                                  headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["apiKey"].startswith("sgk_") and created["clientSecret"].startswith("sgs_")
    cid = created["clientId"]
    assert (await gateway.client.get("/services/ping",
                                     headers={"X-API-Key": created["apiKey"]})).status_code == 200
    listing = (await gateway.client.get("/admin/clients", headers=h)).json()
    assert listing["count"] == 2 and "secret" not in str(listing).lower()

    r = await gateway.client.post(f"/admin/clients/{cid}/keys", headers=h)
    assert r.status_code == 201
    second = r.json()["apiKey"]
    shown = (await gateway.client.get(f"/admin/clients/{cid}", headers=h)).json()
    assert len(shown["keys"]) == 2 and created["apiKey"] not in str(shown)

    r = await gateway.client.delete(f"/admin/clients/{cid}/keys/{created['keyId']}", headers=h)
    assert r.status_code == 200 and r.json()["active"] is False
    assert_problem(await gateway.client.get("/services/ping",
                                            headers={"X-API-Key": created["apiKey"]}), 401)
    assert (await gateway.client.get("/services/ping",
                                     headers={"X-API-Key": second})).status_code == 200

    assert_problem(await gateway.client.post("/admin/clients", json={"name": "partner"},
                                             headers=h), 409)
    assert (await gateway.client.delete(f"/admin/clients/{cid}", headers=h)).status_code == 204
    assert_problem(await gateway.client.get(f"/admin/clients/{cid}", headers=h), 404)
    assert_problem(await gateway.client.get("/services/ping", headers={"X-API-Key": second}), 401)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": ""}, "/name"),
        ({"name": "ok", "scopes": ["bad scope"]}, "/scopes"),
        ({"name": "ok", "extra": 1}, "/extra"),
        ([], ""),
    ],
)
async def test_admin_validation_errors(gateway, body, pointer):
    r = await gateway.client.post("/admin/clients", json=body,
                                  headers={"X-API-Key": gateway.admin_key})
    problem = assert_problem(r, 400)
    assert any(e["pointer"] == pointer for e in problem["errors"]), problem


async def test_malformed_json_is_400(gateway):
    r = await gateway.client.post("/admin/clients", content=b"{nope",
                                  headers={"X-API-Key": gateway.admin_key,
                                           "content-type": "application/json"})
    assert "malformed JSON" in assert_problem(r, 400)["detail"]


async def test_health_ready_metrics(gateway):
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    await gateway.client.get("/services/ping")
    text = (await gateway.client.get("/metrics")).text
    assert 'servicegate_http_requests_total{method="GET",route="/services/ping",status="401"}' in text
    assert "servicegate_http_request_duration_seconds_bucket" in text


async def test_openapi_and_offline_docs(gateway):
    doc = (await gateway.client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert {"Callback", "Services", "Webhooks"} <= {t["name"] for t in doc["tags"]}
    assert "oauth2apikey" in doc["components"]["securitySchemes"]
    assert "/services/ping" in doc["paths"]
    html = (await gateway.client.get("/docs")).text
    assert "openapi.json" in html and "http://" not in html and "https://" not in html


async def test_base_path_prefixes_every_route(tmp_path, sqlite_url):
    import httpx

    from servicegate.app import create_app
    from servicegate.runtime import Runtime
    from servicegate.storage.engine import create_engine
    from servicegate.storage.migrate import upgrade
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, sqlite_url, server={"base_path": "/gw/"})
    engine = create_engine(sqlite_url)
    await upgrade(engine)
    runtime = await Runtime.start(settings, engine=engine)
    app = create_app(settings, runtime=runtime)
    app.state.runtime = runtime
    created = await runtime.clients.create("based", ["services"])
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gw") as client:
            h = {"X-API-Key": created.api_key}
            assert (await client.get("/gw/services/ping", headers=h)).json() == {}
            assert_problem(await client.get("/services/ping", headers=h), 404)
            doc = (await client.get("/gw/openapi.json")).json()
            assert "/gw/services/ping" in doc["paths"]
            assert doc["components"]["securitySchemes"]["oauth2apikey"]["flows"][
                "clientCredentials"]["tokenUrl"] == "/gw/oauth2/token"
    finally:
        await runtime.stop()


async def test_readyz_fails_when_a_worker_stops(gateway):
    async def crashes():
        raise RuntimeError("boom")

    gateway.runtime.spawn("delivery-test", crashes())
    import asyncio

    await asyncio.sleep(0)
    r = await gateway.client.get("/readyz")
    body = assert_problem(r, 503)
    assert "delivery-test" in body["checks"]["workers"]


async def test_metrics_can_require_admin(gateway):
    gateway.runtime.settings.metrics.require_admin = True
    assert_problem(await gateway.client.get("/metrics"), 401)
    r = await gateway.client.get("/metrics", headers={"X-API-Key": gateway.admin_key})
    assert r.status_code == 200 and "servicegate_http_requests_total" in r.text


async def test_deleting_a_client_removes_its_webhooks(gateway):
    from sqlalchemy import func, select

    from servicegate.storage.schema import webhooks

    creds = await gateway.new_client("leaving", "webhooks")
    r = await gateway.client.post("/webhooks", headers={"X-API-Key": creds["api_key"]}, json={
        "events": ["payment"], "url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 200, r.text
    r = await gateway.client.delete(f"/admin/clients/{creds['client_id']}",
                                    headers={"X-API-Key": gateway.admin_key})
    assert r.status_code == 204
    async with gateway.runtime.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(webhooks))).scalar() == 0
