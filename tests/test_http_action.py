"""The `http` action against a real upstream on a free port."""

import socket

import pytest

from tests.support.processes import free_port
from tests.support.receivers import Listener
from tests.support.upstream import last
from tests.test_auth_api import assert_problem


def proxy(url: str, extra: str = "", name: str = "proxy", methods: str = "[GET, POST, PUT, DELETE]"):
    return f"""
name: {name}
methods: {methods}
action:
  type: http
  url: "{url}"
{extra}
"""


async def test_forwards_subpath_query_body_and_request_id(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/api/{{{{ subpath }}}}", """
  headers:
    forward: [X-Tenant]
    set: {Authorization: "Bearer {{ env.SG_UPSTREAM_TOKEN }}", X-Caller: "{{ principal.name }}"}
""").replace("action:", "context: {env: [SG_UPSTREAM_TOKEN]}\naction:"))
    r = await dgw.call("POST", "/services/proxy/customers/a%20b?x=1&x=2",
                       json={"k": "v"},
                       headers={"X-Request-Id": "req-123", "X-Tenant": "t1", "X-Secret": "s",
                                "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    got = last(upstream)
    assert got.method == "POST"
    assert got.raw_path == "/api/customers/a%20b"
    assert got.query == [("x", "1"), ("x", "2")]
    assert got.body == b'{"k":"v"}'
    assert got.headers["X-Request-Id"] == "req-123"
    assert got.headers["X-Tenant"] == "t1"
    assert got.headers["X-Caller"] == "caller"
    assert got.headers["Authorization"] == "Bearer None"
    assert "X-Secret" not in got.headers and "X-API-Key" not in got.headers
    assert r.headers["x-upstream"] == "yes"
    assert r.headers["x-request-id"] == "req-123"


async def test_repeated_forwarded_header_is_joined_and_others_still_found(dgw, upstream):
    # A repeated header name takes the list walk (no header map): values joined in order.
    await dgw.define("p.yaml", proxy(f"{upstream.url}/{{{{ subpath }}}}", """
  headers:
    forward: [X-Tenant]
"""))
    r = await dgw.client.get("/services/proxy/x", headers=[
        ("X-API-Key", dgw.key), ("X-Tenant", "t1"), ("Accept", "application/json"),
        ("X-Tenant", "t2"), ("X-Request-Id", "bad id!"), ("X-Request-Id", "req-2")])
    assert r.status_code == 200, r.text
    got = last(upstream)
    assert got.headers["X-Tenant"] == "t1, t2"
    assert got.headers["Accept"] == "application/json"
    assert got.headers["X-Request-Id"] == "req-2" == r.headers["x-request-id"]


async def test_upstream_cookies_reach_the_caller_and_are_never_replayed(dgw, upstream):
    # One shared outbound session serves every caller: it must not keep a cookie jar,
    # or one caller's upstream session would be sent along with the next caller's request.
    # (A host name: aiohttp's default jar ignores cookies of IP addresses.)
    await dgw.define("p.yaml", proxy(f"http://localhost:{upstream.port}/{{{{ subpath }}}}"))
    r = await dgw.call("GET", "/services/proxy/cookie")
    assert r.status_code == 200
    assert "session=of-one-caller" in r.headers["set-cookie"]
    r = await dgw.call("GET", "/services/proxy/next")
    assert r.status_code == 200
    assert last(upstream).raw_path == "/next"
    assert "Cookie" not in last(upstream).headers


async def test_passthrough_status_and_non_json_body(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/{{{{ subpath }}}}"))
    r = await dgw.call("GET", "/services/proxy/text")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    assert r.text == "<ok/>"
    r = await dgw.call("GET", "/services/proxy/fail")
    assert r.status_code == 500 and r.json() == {"error": "boom"}


async def test_response_mapping_with_jmespath(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/items", """
  method: GET
  query: {page: "{{ query.p | default(1) }}", fixed: literal}
  body: none
  response:
    status: 203
    headers: {X-Total: "{{ response.body.total }}"}
    body:
      names: {$jmespath: "response.body.items[*].name"}
      first: {$jmespath: "response.body.items[0].{id: id}"}
"""))
    r = await dgw.call("POST", "/services/proxy?p=3&ignored=1", json={"x": 1})
    assert r.status_code == 203
    assert r.headers["x-total"] == "3"
    assert r.json() == {"names": ["n0", "n1", "n2"], "first": {"id": 0}}
    got = last(upstream)
    assert got.method == "GET" and got.body == b""
    assert sorted(got.query) == [("fixed", "literal"), ("page", "3")]


async def test_unreachable_upstream_502_names_definition(dgw):
    port = free_port()
    await dgw.define("p.yaml", proxy(f"http://127.0.0.1:{port}/x"))
    body = assert_problem(await dgw.call("GET", "/services/proxy"), 502)
    assert body["definition"] == "proxy" and "proxy" in body["detail"]


async def test_connection_closed_by_upstream_502(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/close"))
    assert_problem(await dgw.call("GET", "/services/proxy"), 502)


async def test_slow_upstream_504(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/slow?s=1", "  timeout: 200ms\n  query: none"))
    body = assert_problem(await dgw.call("GET", "/services/proxy"), 504)
    assert body["definition"] == "proxy"


async def test_definition_timeout_504(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/slow?s=1", "  query: none")
                     .replace("methods:", "timeout: 200ms\nmethods:"))
    body = assert_problem(await dgw.call("GET", "/services/proxy"), 504)
    assert "200ms" not in body["detail"] and "0.2s" in body["detail"]


async def test_retries_idempotent_methods_only(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/flaky",
                                     "  retries: {attempts: 2, backoff: 10ms}"))
    upstream.flaky_failures = 2
    r = await dgw.call("GET", "/services/proxy")
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert len(upstream.received) == 3
    upstream.received.clear()
    upstream.flaky_failures = 1
    r = await dgw.call("POST", "/services/proxy", json={})
    assert r.status_code == 503
    assert len(upstream.received) == 1


async def test_retries_exhausted_answers_upstream_status(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/flaky",
                                     "  retries: {attempts: 1, backoff: 10ms}"))
    upstream.flaky_failures = 5
    r = await dgw.call("GET", "/services/proxy")
    assert r.status_code == 503 and len(upstream.received) == 2


@pytest.mark.parametrize("value", ["../admin", "%2e%2e/admin", "a/../../admin",
                                   "http://evil.example/", "//evil.example/x"])
async def test_templated_values_cannot_leave_the_base(dgw, upstream, value):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/api/{{{{ query.id }}}}", "  query: none"))
    r = await dgw.call("GET", "/services/proxy", params={"id": value})
    if r.status_code == 200:
        assert last(upstream).raw_path.startswith("/api/")
        assert ".." not in last(upstream).path
    else:
        assert_problem(r, 400)


async def test_subpath_traversal_never_reaches_upstream(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/api/{{{{ subpath }}}}"))
    for path in ("/services/proxy/..%2F..%2Fsecret", "/services/proxy/%2E%2E/secret",
                 "/services/proxy/a%2Fb"):
        assert_problem(await dgw.call("GET", path), 400)
    assert upstream.received == []


async def test_crlf_in_injected_header_not_sent(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/x", """
  headers:
    set: {X-Id: "{{ query.id }}"}
"""))
    r = await dgw.call("GET", "/services/proxy", params={"id": "a\r\nX-Evil: 1"})
    assert_problem(r, 400)
    assert upstream.received == []


@pytest.mark.parametrize("chunked", ["", "1"])
async def test_large_bodies_pass_whole_and_oversized_are_refused(dgw, upstream, chunked):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/big"))
    r = await dgw.call("GET", f"/services/proxy?size=300000&chunked={chunked}")
    assert r.status_code == 200 and len(r.content) == 300000
    assert r.content[:256] == bytes(range(256)) and r.content[-1] == (300000 - 1) % 256
    limit = dgw.runtime.settings.definitions.max_upstream_response_bytes
    r = await dgw.call("GET", f"/services/proxy?size={limit + 10}&chunked={chunked}")
    assert_problem(r, 502)


async def test_user_agent_is_servicegate_unless_the_definition_sets_one(dgw, upstream):
    from servicegate import __version__

    await dgw.define("p.yaml", proxy(f"{upstream.url}/{{{{ subpath }}}}"))
    assert (await dgw.call("GET", "/services/proxy/echo",
                           headers={"User-Agent": "caller/1"})).status_code == 200
    assert last(upstream).headers.getall("User-Agent") == [f"ServiceGate/{__version__}"]
    await dgw.define("q.yaml", proxy(f"{upstream.url}/{{{{ subpath }}}}", """
  headers:
    set: {User-Agent: "crm-bridge/2"}
""", name="setua"))
    assert (await dgw.call("GET", "/services/setua/echo")).status_code == 200
    assert last(upstream).headers.getall("User-Agent") == ["crm-bridge/2"]
    await dgw.define("r.yaml", proxy(f"{upstream.url}/{{{{ subpath }}}}", """
  headers:
    forward: [User-Agent]
""", name="fwdua"))
    assert (await dgw.call("GET", "/services/fwdua/echo",
                           headers={"User-Agent": "caller/1"})).status_code == 200
    assert last(upstream).headers.getall("User-Agent") == ["caller/1"]


async def test_response_headers_pass_back_except_hop_by_hop_and_gateway_owned(dgw):
    from aiohttp import web

    async def answer(_: web.Request) -> web.StreamResponse:
        response = web.Response(body=b"{}", content_type="application/json", headers={
            "X-Custom": "kept", "ETag": '"v1"', "Cache-Control": "no-store",
            "X-Label": "café €",  # sent as UTF-8: its bytes must arrive unchanged
            "Keep-Alive": "timeout=5", "Proxy-Authenticate": "Basic", "Trailer": "X-T",
            "Upgrade": "h2c", "X-Request-Id": "upstream-id", "Server": "upstream/1",
        })
        return response

    app = web.Application()
    app.router.add_get("/h", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await dgw.define("p.yaml", proxy(f"http://127.0.0.1:{port}/h"))
        r = await dgw.call("GET", "/services/proxy", headers={"X-Request-Id": "mine"})
        assert r.status_code == 200 and r.json() == {}
        raw = {k.lower(): v for k, v in r.headers.raw}
        assert raw[b"x-custom"] == b"kept" and raw[b"etag"] == b'"v1"'
        assert raw[b"cache-control"] == b"no-store"
        assert raw[b"x-label"] == "café €".encode()
        for dropped in (b"keep-alive", b"proxy-authenticate", b"trailer", b"upgrade"):
            assert dropped not in raw
        assert r.headers.get_list("x-request-id") == ["mine"]
        assert b"upstream/1" not in raw.get(b"server", b"")
        assert r.headers["content-type"] == "application/json"
        assert r.headers["content-length"] == "2"
    finally:
        await runner.cleanup()


def test_passed_back_filters_raw_names_case_insensitively():
    from servicegate.actions.http import passed_back

    got = passed_back(((b"X-A", b"1"), (b"CONNECTION", b"close"), (b"Content-Type", b"a/b"),
                       (b"x-b", b"\xe9"), (b"Transfer-Encoding", b"chunked")))
    assert got == {"X-A": "1", "x-b": "\xe9"}


async def test_a_query_value_with_a_space_is_encoded_not_sent_raw(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/base?q={{{{ query.q }}}}&r=1",
                                     "  query: none"))
    r = await dgw.call("GET", "/services/proxy", params={"q": "a b"})
    assert r.status_code == 200, r.text
    got = last(upstream)
    assert got.raw_query == "q=a%20b&r=1"
    assert got.query == [("q", "a b"), ("r", "1")]


@pytest.mark.parametrize("value", ["x&admin=1", "x#frag", "x=y+z", "100%", "%2e%2e", "ä?"])
async def test_a_query_value_stays_one_value(dgw, upstream, value):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/base?q={{{{ query.q }}}}&r=1",
                                     "  query: none"))
    r = await dgw.call("GET", "/services/proxy", params={"q": value})
    assert r.status_code == 200, r.text
    got = last(upstream)
    assert got.path == "/base"
    assert got.query == [("q", value), ("r", "1")]


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\tb", "a\r\nX-Evil: 1", "a\x00b"])
@pytest.mark.parametrize("where", ["/base?q={{ query.q }}", "/base/{{ query.q }}"])
async def test_control_characters_in_a_url_value_are_refused(dgw, upstream, value, where):
    await dgw.define("p.yaml", proxy(upstream.url + where, "  query: none"))
    r = await dgw.call("GET", "/services/proxy", params={"q": value})
    problem = assert_problem(r, 400)
    assert "control characters" in problem["detail"]
    assert upstream.received == []


async def test_a_decoded_segment_cannot_inject_a_query_or_cut_the_path(dgw, upstream):
    await dgw.define("p.yaml", proxy(f"{upstream.url}/base/{{{{ segments[0] }}}}/end",
                                     "  query: none"))
    r = await dgw.call("GET", "/services/proxy/a%3fadmin=1%23")
    assert r.status_code == 200, r.text
    got = last(upstream)
    assert got.raw_path == "/base/a%3Fadmin=1%23/end"
    assert got.path == "/base/a?admin=1#/end"
    assert got.query == []
    # a decoded value is data: its own `%` is encoded again
    r = await dgw.call("GET", "/services/proxy/100%2525")
    assert r.status_code == 200, r.text
    assert last(upstream).raw_path == "/base/100%2525/end"
    assert last(upstream).path == "/base/100%25/end"


async def test_subpath_and_urlquote_output_are_not_encoded_twice(dgw, upstream):
    await dgw.define("p.yaml", proxy(
        f"{upstream.url}/base/{{{{ subpath }}}}?q={{{{ query.q | urlquote }}}}&s={{{{ subpath }}}}",
        "  query: none"))
    r = await dgw.call("GET", "/services/proxy/a%20b/c%3Dd", params={"q": "x y&z"})
    assert r.status_code == 200, r.text
    got = last(upstream)
    assert got.raw_path == "/base/a%20b/c=d"
    assert got.query == [("q", "x y&z"), ("s", "a b/c=d")]


# 127.0.0.1 as IDNA (UTS-46) maps it; the client connects to the loopback address
LOOPBACK_SPELLINGS = ["127.0.0.1", "127。0。0。1", "１２７.０.０.１", "①②⑦.0.0.1",  # noqa: RUF001
                      "127．0．0．1", "127.0.0.1.", "2130706433", "0x7f.1", "localhost",  # noqa: RUF001
                      "LOCALHOST.", "[::ffff:127.0.0.1]"]


@pytest.fixture
async def listener():
    server = await Listener().start()
    yield server
    await server.stop()


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_a_templated_origin_is_guarded_like_a_webhook(dgw, listener, host):
    await dgw.define("p.yaml", proxy("http://{{ query.host }}/x", "  query: none"))
    r = await dgw.call("GET", "/services/proxy", params={"host": f"{host}:{listener.port}"})
    problem = assert_problem(r, 400)
    assert problem["detail"].startswith("definition 'proxy' refused the upstream URL: ")
    assert problem["detail"].endswith(("is a loopback address", "is localhost",
                                       "is an IPv4-mapped IPv6 address"))
    assert "loopback-secret" not in r.text
    assert await listener.settled() == []


async def test_a_templated_origin_resolving_to_loopback_is_refused_by_the_resolver(dgw, listener):
    name = socket.gethostname()
    try:
        resolved = socket.getaddrinfo(name, None)[0][4][0]
    except OSError:
        pytest.skip("this machine's host name does not resolve")
    if not resolved.startswith("127."):
        pytest.skip("this machine's host name does not resolve to a loopback address")
    await dgw.define("p.yaml", proxy("http://{{ query.host }}/x", "  query: none"))
    r = await dgw.call("GET", "/services/proxy", params={"host": f"{name}:{listener.port}"})
    problem = assert_problem(r, 400)
    assert "resolves to a loopback address" in problem["detail"]
    assert await listener.settled() == []


@pytest.mark.parametrize("host", ["%31%32%37.0.0.1", "a..b", "xn--", "a b"])
async def test_a_templated_host_that_cannot_be_read_is_refused(dgw, listener, host):
    await dgw.define("p.yaml", proxy("http://{{ query.host }}/x", "  query: none"))
    r = await dgw.call("GET", "/services/proxy", params={"host": host})
    assert_problem(r, 400)


async def test_private_templated_origins_when_the_operator_allows_them(dgw, upstream):
    dgw.runtime.settings.definitions.allow_private_networks = True
    await dgw.define("p.yaml", proxy("http://{{ query.host }}/x", "  query: none"))
    for host in ("127.0.0.1", "１２７。０。０。１"):  # noqa: RUF001
        r = await dgw.call("GET", "/services/proxy", params={"host": f"{host}:{upstream.port}"})
        assert r.status_code == 200, r.text
        assert last(upstream).path == "/x"


async def test_an_origin_from_the_environment_is_a_templated_origin(dgw, upstream, monkeypatch):
    monkeypatch.setenv("SG_UPSTREAM_URL", upstream.url)
    await dgw.define("p.yaml", proxy("{{ env.SG_UPSTREAM_URL }}/x/{{ query.id }}", "  query: none")
                     .replace("action:", "context: {env: [SG_UPSTREAM_URL]}\naction:"))
    assert_problem(await dgw.call("GET", "/services/proxy", params={"id": "1"}), 400)
    assert upstream.received == []
    dgw.runtime.settings.definitions.allow_private_networks = True
    await dgw.define("p.yaml", proxy("{{ env.SG_UPSTREAM_URL }}/y/{{ query.id }}", "  query: none")
                     .replace("action:", "context: {env: [SG_UPSTREAM_URL]}\naction:"))
    r = await dgw.call("GET", "/services/proxy", params={"id": "a b"})
    assert r.status_code == 200, r.text
    assert last(upstream).raw_path == "/y/a%20b"
