"""Bad input answers a 400 problem naming what is wrong, never a 5xx: JSON nested too deep,
integers beyond 64 bits bound into SQL, a path value the definition needs but the request
lacks. In process; the SQL database is a real SQLite file and the real PostgreSQL."""

from pathlib import Path

import pytest

from servicegate.problems import Problem
from servicegate.web.bodies import parse_json
from tests.support.definitions import settings_for, start_gateway
from tests.test_auth_api import assert_problem
from tests.test_sql_python_pipeline import _seed

HANDLERS = """
async def echo(ctx):
    return {"received": ctx.body}
"""


def nested(depth: int) -> bytes:
    """`depth` arrays one inside the other around a number."""
    return b"[" * depth + b"1" + b"]" * depth


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def gw(sql_url: str, tmp_path: Path):
    await _seed(sql_url)
    gw, client = await start_gateway(settings_for(tmp_path, databases={"app": {"url": sql_url}}))
    (gw.directory / "bad_input_handlers.py").write_text(HANDLERS)
    gw.write("echo.yaml", """
        name: echo
        expose: [services, callback]
        methods: [GET, POST]
        action: {type: python, handler: "bad_input_handlers:echo"}
    """)
    gw.write("account.yaml", """
        name: account
        methods: [GET]
        action:
          type: sql
          database: app
          query: SELECT id, owner FROM accounts WHERE id = :id
          params: {id: "{{ segments[0] | int }}"}
          result: one
    """)
    gw.write("accounts.yaml", """
        name: accounts
        methods: [GET]
        action:
          type: sql
          database: app
          query: SELECT id FROM accounts ORDER BY id LIMIT :limit
          params: {limit: "{{ query.limit | default(25) | int }}"}
    """)
    gw.write("owner.yaml", """
        name: owner
        methods: [POST]
        action: {type: static, body: {owner: "{{ body.account.owner }}"}}
    """)
    report = await gw.runtime.definitions.reload()
    assert not report.problems, [str(p) for p in report.problems]
    try:
        yield gw
    finally:
        await client.aclose()
        await gw.runtime.stop()


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("path", ["/services/echo", "/services/echo?async=true",
                                  "/callback/echo"])
async def test_json_nested_too_deep_is_400(gw, path):
    body = assert_problem(await gw.call("POST", path, content=nested(254), headers=JSON), 400)
    assert body["detail"] == "the JSON body is nested deeper than 64 levels"
    assert body["maxDepth"] == 64


async def test_json_depth_limit_is_exact(gw):
    r = await gw.call("POST", "/services/echo", content=nested(64), headers=JSON)
    assert r.status_code == 200, r.text
    assert_problem(await gw.call("POST", "/services/echo", content=nested(65), headers=JSON), 400)


async def test_deep_event_data_and_admin_bodies_are_400(gw):
    publisher = await gw.runtime.clients.create("publisher", ["events:publish", "admin"])
    key = {"X-API-Key": publisher.api_key, **JSON}
    event = b'{"event": "ordershipped", "data": ' + nested(300) + b"}"
    r = await gw.client.post("/events", content=event, headers=key)
    assert "nested deeper than 64" in assert_problem(r, 400)["detail"]
    r = await gw.client.post("/admin/clients", content=b'{"name": ' + nested(300) + b"}",
                             headers=key)
    assert "nested deeper than 64" in assert_problem(r, 400)["detail"]


def test_depth_check_needs_no_recursion():
    """Far deeper than the stack would allow a recursive walk (orjson's own limit is 1024)."""
    with pytest.raises(Problem, match="deeper than 10 levels"):
        parse_json(b'{"a": ' * 1000 + b"1" + b"}" * 1000, 10)
    assert parse_json(b'"[[[[[[[[[[[[[["', 3) == "[[[[[[[[[[[[[["  # brackets in a string
    assert parse_json(b'[[1], {"a": [2]}, [[3]]]', 3) == [[1], {"a": [2]}, [[3]]]


@pytest.mark.parametrize(("path", "parameter"), [
    ("/services/account/99999999999999999999999", "id"),
    ("/services/account/-9223372036854775809", "id"),
    ("/services/accounts?limit=9223372036854775808", "limit"),
])
async def test_integers_beyond_64_bits_are_400_naming_the_parameter(gw, path, parameter):
    body = assert_problem(await gw.call("GET", path), 400)
    assert body["detail"] == (f"parameter :{parameter} of definition "
                              f"{path.split('/')[2].split('?')[0]!r} is out of the range of a "
                              "64-bit integer")
    assert body["parameter"] == parameter


async def test_largest_64_bit_integers_still_bind(gw, sql_url):
    r = await gw.call("GET", "/services/account/9223372036854775807")
    if sql_url.startswith("sqlite"):
        assert_problem(r, 404)
    else:  # the column is a 32-bit integer there: the database says so, the caller is told
        body = assert_problem(r, 400)
        assert body["detail"] == ("parameter :id of definition 'account' does not fit the "
                                  "statement: value out of int32 range")
        assert body["parameter"] == "id"
    assert (await gw.call("GET", "/services/accounts?limit=9223372036854775807")).json() == [
        {"id": 1}, {"id": 2}, {"id": 3}]


async def test_a_missing_path_value_is_400_naming_it(gw):
    body = assert_problem(await gw.call("GET", "/services/account"), 400)
    assert body["detail"] == ("the request lacks segments[0] (path segment 1 after "
                              "/services/account), which definition 'account' needs")
    assert body["missing"] == "segments[0]"
    body = assert_problem(await gw.call("POST", "/services/owner", json={"account": {}}), 400)
    assert body["missing"] == "body.account.owner"
    body = assert_problem(await gw.call("POST", "/services/owner"), 400)
    assert body["missing"] == "body.account"
    assert (await gw.call("GET", "/services/account/2")).json() == {"id": 2, "owner": "bob"}
