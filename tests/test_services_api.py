"""/services/{name}: routing, auth, methods, input, limits and the static action, in process."""

import pytest

from tests.test_auth_api import assert_problem

HELLO = """
    name: hello
    methods: [GET, POST, DELETE]
    action:
      type: static
      status: 201
      headers: {X-Greeting: "hi {{ query.name | default('you') }}"}
      body:
        method: "{{ method }}"
        subpath: "{{ subpath }}"
        segments: "{{ segments }}"
        query_all: "{{ query_all }}"
        body: "{{ body }}"
        client: "{{ principal.client_id }}"
        literal: [1, true, null]
"""


async def test_static_answers_with_templated_values(dgw):
    await dgw.define("hello.yaml", HELLO)
    r = await dgw.call("POST", "/services/hello/a%20b/c?x=1&x=2&name=Ada", json={"n": [1, 2]})
    assert r.status_code == 201, r.text
    assert r.headers["x-greeting"] == "hi Ada"
    body = r.json()
    assert body["method"] == "POST"
    assert body["segments"] == ["a b", "c"]
    assert body["subpath"] == "a%20b/c"
    assert body["query_all"] == {"x": ["1", "2"], "name": ["Ada"]}
    assert body["body"] == {"n": [1, 2]}
    assert body["client"].startswith("cl_")
    assert body["literal"] == [1, True, None]


async def test_requests_counted_per_definition(dgw):
    await dgw.define("hello.yaml", HELLO)
    await dgw.call("GET", "/services/hello")
    await dgw.call("PUT", "/services/hello")
    text = (await dgw.client.get("/metrics")).text
    line = 'servicegate_definition_requests_total{definition="hello",status="%s",via="services"}'
    assert line % "201" in text and line % "405" in text


async def test_delete_with_json_body(dgw):
    await dgw.define("hello.yaml", HELLO)
    r = await dgw.call("DELETE", "/services/hello", content=b'{"id": 7}')
    assert r.status_code == 201 and r.json()["body"] == {"id": 7}


async def test_empty_action_result_is_empty_object(dgw):
    await dgw.define("e.yaml", "name: empty\naction: {type: static}\n")
    r = await dgw.call("GET", "/services/empty")
    assert r.status_code == 200 and r.content == b"{}"


async def test_unknown_definition_404_and_auth_first(dgw):
    r = await dgw.call("GET", "/services/nope/x")
    body = assert_problem(r, 404)
    assert "nope" in body["detail"]
    r = await dgw.client.get("/services/nope")
    assert_problem(r, 401)


async def test_method_not_allowed_405_with_allow(dgw):
    await dgw.define("hello.yaml", HELLO)
    r = await dgw.call("PUT", "/services/hello")
    assert_problem(r, 405)
    assert r.headers["allow"] == "GET, POST, DELETE"


async def test_scopes_services_name_and_extra(dgw):
    await dgw.define("s.yaml", """
        name: secured
        auth: {scopes: [crm]}
        action: {type: static, body: {ok: true}}
    """)
    r = await dgw.call("GET", "/services/secured")
    assert assert_problem(r, 403)["missingScopes"] == ["crm"]
    narrow = await dgw.runtime.clients.create("narrow", ["services:secured", "crm"])
    r = await dgw.client.get("/services/secured", headers={"X-API-Key": narrow.api_key})
    assert r.status_code == 200 and r.json() == {"ok": True}
    other = await dgw.runtime.clients.create("other", ["services:hello", "crm"])
    r = await dgw.client.get("/services/secured", headers={"X-API-Key": other.api_key})
    assert_problem(r, 403)


async def test_callback_only_definition_is_not_a_service(dgw):
    await dgw.define("c.yaml", "name: cb\nexpose: [callback]\naction: {type: static}\n")
    assert_problem(await dgw.call("GET", "/services/cb"), 404)


async def test_ping_route_keeps_precedence(dgw):
    r = await dgw.call("GET", "/services/ping")
    assert r.status_code == 200 and r.json() == {}


async def test_malformed_json_400(dgw):
    await dgw.define("hello.yaml", HELLO)
    r = await dgw.call("POST", "/services/hello", content=b'{"a": ')
    assert "malformed JSON" in assert_problem(r, 400)["detail"]


SCHEMA = """
    name: create-case
    methods: [POST]
    input:
      max_bytes: 2048
      schema:
        type: object
        required: [debtor, amount]
        properties:
          debtor: {type: string, minLength: 1}
          amount: {type: number, exclusiveMinimum: 0}
          tags: {type: array, items: {type: string}}
        additionalProperties: false
    action: {type: static, body: "{{ body }}"}
"""


async def test_input_schema_errors_one_per_failure(dgw):
    await dgw.define("c.yaml", SCHEMA)
    r = await dgw.call("POST", "/services/create-case",
                       json={"amount": -5, "tags": ["a", 3], "x": 1})
    body = assert_problem(r, 400)
    pointers = sorted(e["pointer"] for e in body["errors"])
    assert pointers == ["", "", "/amount", "/tags/1"]
    assert all(e["message"] for e in body["errors"])
    r = await dgw.call("POST", "/services/create-case", json={"debtor": "Ada", "amount": 10})
    assert r.status_code == 200 and r.json() == {"debtor": "Ada", "amount": 10}


async def test_missing_body_fails_schema(dgw):
    await dgw.define("c.yaml", SCHEMA)
    body = assert_problem(await dgw.call("POST", "/services/create-case"), 400)
    assert body["errors"][0]["pointer"] == ""


async def test_definition_body_limit_413(dgw):
    await dgw.define("c.yaml", SCHEMA)
    r = await dgw.call("POST", "/services/create-case",
                       json={"debtor": "x" * 3000, "amount": 1})
    assert assert_problem(r, 413)["limit"] == 2048


async def test_gateway_body_limit_413(dgw):
    await dgw.define("hello.yaml", HELLO)
    r = await dgw.call("POST", "/services/hello", content=b"[" + b"1," * 600_000 + b"1]")
    assert_problem(r, 413)


async def test_gateway_body_limit_413_on_a_chunked_body(dgw):
    """The /services path reads the body itself: the limit holds on the bytes received."""
    await dgw.define("hello.yaml", HELLO)
    limit = dgw.runtime.settings.limits.max_body_bytes

    async def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"1" * 65536

    r = await dgw.call("POST", "/services/hello", content=chunks(),
                       headers={"Content-Type": "application/json", "X-Request-Id": "rid-413"})
    assert assert_problem(r, 413)["limit"] == limit
    assert r.headers["x-request-id"] == "rid-413"


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
async def test_async_true_answers_202_with_a_job(dgw, value):
    await dgw.define("hello.yaml", HELLO)
    r = await dgw.call("GET", f"/services/hello?async={value}")
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert r.headers["location"].endswith(f"/services/jobs/{r.json()['jobId']}")


@pytest.mark.parametrize("value", ["false", "False", "0"])
async def test_async_false_runs_and_is_not_passed_on(dgw, value):
    await dgw.define("hello.yaml", HELLO)
    r = await dgw.call("GET", f"/services/hello?async={value}&k=v")
    assert r.status_code == 201 and r.json()["query_all"] == {"k": ["v"]}


async def test_async_bad_value_and_forbidden(dgw):
    await dgw.define("f.yaml", "name: sync-only\nasync: forbidden\naction: {type: static}\n")
    assert_problem(await dgw.call("GET", "/services/sync-only?async=yes"), 400)
    await dgw.define("hello.yaml", HELLO)
    for query in ("async=true&async=false", "async=0&async=1"):
        r = await dgw.call("GET", f"/services/hello?{query}")
        assert "given twice" in assert_problem(r, 400)["detail"]
    r = await dgw.call("GET", "/services/hello?async=false&async=0&k=v")  # the same, repeated
    assert r.status_code == 201 and r.json()["query_all"] == {"k": ["v"]}
    r = await dgw.call("GET", "/services/sync-only?async=true")
    assert "does not allow" in assert_problem(r, 400)["detail"]
    await dgw.define("a.yaml", "name: always\nasync: always\naction: {type: static}\n")
    assert (await dgw.call("GET", "/services/always")).status_code == 202


LIMITED = """
    name: limited
    rate_limit: {requests: 2, per: 1m}
    action: {type: static}
"""


async def test_rate_limit_per_client_with_headers(dgw):
    await dgw.define("r.yaml", LIMITED)
    first = await dgw.call("GET", "/services/limited")
    assert first.status_code == 200
    assert first.headers["ratelimit-limit"] == "2"
    assert first.headers["ratelimit-remaining"] == "1"
    assert (await dgw.call("GET", "/services/limited")).status_code == 200
    third = await dgw.call("GET", "/services/limited")
    assert_problem(third, 429)
    assert int(third.headers["retry-after"]) >= 1
    assert third.headers["ratelimit-remaining"] == "0"
    other = await dgw.runtime.clients.create("other", ["services"])
    r = await dgw.client.get("/services/limited", headers={"X-API-Key": other.api_key})
    assert r.status_code == 200  # buckets are per client


async def test_an_accepted_job_carries_the_rate_limit_headers_too(dgw):
    await dgw.define("r.yaml", LIMITED)
    r = await dgw.call("GET", "/services/limited?async=true")
    assert r.status_code == 202
    job_id = r.json()["jobId"]
    assert r.headers["location"].endswith(f"/services/jobs/{job_id}")
    assert r.headers["retry-after"] == "1" and r.headers["ratelimit-remaining"] == "1"
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)


async def test_template_error_at_run_time_is_500_naming_definition(dgw):
    """A template that fails on what the request gave is the definition's fault (a value
    missing from the request is a 400: tests/test_bad_input.py)."""
    await dgw.define("t.yaml", """
        name: broken-at-runtime
        context: {env: [SG_TEST_SECRET]}
        action: {type: static, body: {v: "{{ body.a / 0 }}", s: "{{ env.SG_TEST_SECRET }}"}}
    """)
    r = await dgw.call("POST", "/services/broken-at-runtime", json={"a": 1})
    body = assert_problem(r, 500)
    assert body["definition"] == "broken-at-runtime"
    assert body["traceId"] and "action.body.v" in body["detail"]


async def test_env_allow_list(dgw, monkeypatch):
    monkeypatch.setenv("SG_VISIBLE", "yes")
    monkeypatch.setenv("SG_HIDDEN", "no")
    await dgw.define("e.yaml", """
        name: env
        context: {env: [SG_VISIBLE]}
        action: {type: static, body: {env: "{{ env }}"}}
    """)
    r = await dgw.call("GET", "/services/env")
    assert r.json() == {"env": {"SG_VISIBLE": "yes"}}


async def test_headers_allow_list_in_context(dgw):
    await dgw.define("h.yaml", """
        name: heads
        context: {headers: [X-Tenant]}
        action: {type: static, body: "{{ headers }}"}
    """)
    r = await dgw.call("GET", "/services/heads",
                       headers={"X-Tenant": "t1", "X-Other": "o", "Accept": "application/json"})
    body = r.json()
    assert body["x-tenant"] == "t1" and body["accept"] == "application/json"
    assert "x-other" not in body and "x-api-key" not in body


async def test_crlf_in_rendered_header_is_refused(dgw):
    await dgw.define("h.yaml", """
        name: inject
        action: {type: static, headers: {X-Echo: "{{ query.v }}"}}
    """)
    r = await dgw.call("GET", "/services/inject?v=a%0D%0ASet-Cookie:%20x=1")
    assert_problem(r, 400)
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize("path", ["/services/hello/..%2Fadmin", "/services/hello/%2e%2e/x",
                                  "/services/hello/a%5Cb", "/services/hello/a%00b"])
async def test_unsafe_subpaths_400(dgw, path):
    await dgw.define("hello.yaml", HELLO)
    assert_problem(await dgw.call("GET", path), 400)


async def test_sandbox_blocks_python_internals(dgw):
    await dgw.define("s.yaml", """
        name: sneaky
        action: {type: static, body: "{{ body.__class__.__mro__ }}"}
    """)
    r = await dgw.call("POST", "/services/sneaky", json={})
    assert_problem(r, 500)


async def test_base_path_prefix_and_subpath(tmp_path):
    from tests.support.definitions import settings_for, start_gateway

    gw, client = await start_gateway(settings_for(tmp_path, server={"base_path": "/gw"}))
    try:
        await gw.define("hello.yaml", HELLO)
        r = await gw.call("GET", "/gw/services/hello/x/y%2Fz".replace("%2F", "_"))
        assert r.status_code == 201 and r.json()["segments"] == ["x", "y_z"]
        assert (await gw.call("GET", "/gw/services/ping")).json() == {}
        assert_problem(await gw.call("GET", "/services/hello"), 404)
        assert_problem(await gw.call("GET", "/gw/services/hello/a%2Fb"), 400)
    finally:
        await client.aclose()
        await gw.runtime.stop()


async def test_constant_static_answer_is_reused_and_follows_reloads(dgw):
    # Nothing to render: the answer is prepared once, yet every check still runs per request.
    await dgw.define("k.yaml", """
        name: constant
        methods: [GET, POST]
        input: {schema: {type: [object, "null"], required: [id]}}
        action: {type: static, status: 202, headers: {X-Kind: fixed}, body: {ok: 1}}
    """)
    for _ in range(2):
        r = await dgw.call("GET", "/services/constant/a/b")
        assert r.status_code == 202 and r.json() == {"ok": 1}
        assert r.headers["x-kind"] == "fixed"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["content-length"] == str(len(r.content))
        assert r.headers["x-request-id"]
    assert r.headers["x-request-id"] != (await dgw.call("GET", "/services/constant")).headers[
        "x-request-id"]
    assert_problem(await dgw.call("GET", "/services/constant/%2e%2e/x"), 400)
    assert_problem(await dgw.call("POST", "/services/constant", content=b"{nope",
                                  headers={"Content-Type": "application/json"}), 400)
    assert_problem(await dgw.call("POST", "/services/constant", json={"other": 1}), 400)
    assert_problem(await dgw.call("PUT", "/services/constant"), 405)
    await dgw.define("k.yaml", """
        name: constant
        action: {type: static, body: {ok: 2}}
    """)
    r = await dgw.call("GET", "/services/constant")
    assert r.status_code == 200 and r.json() == {"ok": 2} and "x-kind" not in r.headers
