"""The `sql` (real SQLite file and the real PostgreSQL), `python` and `pipeline` actions."""

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from servicegate.storage.engine import create_engine
from tests.support.definitions import settings_for, start_gateway
from tests.test_auth_api import assert_problem


async def _seed(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS accounts"))
        await conn.execute(text("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT, "
                                "balance NUMERIC(12,2))"))
        await conn.execute(text("INSERT INTO accounts VALUES (1, 'ada', 10.50), (2, 'bob', 0), "
                                "(3, 'cy', 7)"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def sqlgw(sql_url: str, tmp_path: Path):
    url = sql_url
    await _seed(url)
    gw, client = await start_gateway(settings_for(tmp_path, databases={"app": {"url": url}}))
    try:
        yield gw
    finally:
        await client.aclose()
        await gw.runtime.stop()


def sql(name: str, query: str, params: str = "{}", result: str = "rows", extra: str = "") -> str:
    return f"""
name: {name}
action:
  type: sql
  database: app
  query: "{query}"
  params: {params}
  result: {result}
{extra}
"""


async def test_rows_one_scalar_rowcount(sqlgw):
    await sqlgw.define("rows.yaml", sql("rows", "SELECT id, owner, balance FROM accounts "
                                        "WHERE balance >= :min ORDER BY id",
                                        '{min: "{{ query.min | default(0) | float }}"}'))
    r = await sqlgw.call("GET", "/services/rows?min=5")
    assert r.status_code == 200
    assert r.json() == [{"id": 1, "owner": "ada", "balance": 10.5},
                        {"id": 3, "owner": "cy", "balance": 7}]
    await sqlgw.define("one.yaml", sql("one", "SELECT id, owner FROM accounts WHERE id = :id",
                                       '{id: "{{ segments[0] | int }}"}', "one"))
    assert (await sqlgw.call("GET", "/services/one/2")).json() == {"id": 2, "owner": "bob"}
    body = assert_problem(await sqlgw.call("GET", "/services/one/99"), 404)
    assert body["definition"] == "one"
    await sqlgw.define("scalar.yaml", sql("count", "SELECT COUNT(*) FROM accounts", "{}", "scalar"))
    assert (await sqlgw.call("GET", "/services/count")).json() == 3


async def test_injection_attempt_is_just_a_value(sqlgw):
    await sqlgw.define("one.yaml", sql("by-owner", "SELECT id FROM accounts WHERE owner = :o",
                                       '{o: "{{ query.o }}"}'))
    r = await sqlgw.call("GET", "/services/by-owner", params={"o": "x' OR '1'='1"})
    assert r.status_code == 200 and r.json() == []


async def test_read_only_unless_write(sqlgw):
    await sqlgw.define("del.yaml", sql("delete-ro", "DELETE FROM accounts WHERE id = :id",
                                       '{id: "{{ body.id }}"}', "rowcount"))
    r = await sqlgw.call("POST", "/services/delete-ro", json={"id": 1})
    # SQLite refuses writes in query_only mode; PostgreSQL in a READ ONLY transaction
    assert r.status_code == 502 or r.json() == {"rowcount": 1}
    await sqlgw.define("count.yaml", sql("count", "SELECT COUNT(*) FROM accounts", "{}", "scalar"))
    assert (await sqlgw.call("GET", "/services/count")).json() == 3
    await sqlgw.define("delw.yaml", sql("delete-rw", "DELETE FROM accounts WHERE id = :id",
                                        '{id: "{{ body.id }}"}', "rowcount",
                                        "  write: true"))
    r = await sqlgw.call("POST", "/services/delete-rw", json={"id": 1})
    assert r.json() == {"rowcount": 1}
    assert (await sqlgw.call("GET", "/services/count")).json() == 2


async def test_bad_statement_is_a_problem(sqlgw):
    await sqlgw.define("bad.yaml", sql("bad", "SELECT nope FROM missing_table"))
    body = assert_problem(await sqlgw.call("GET", "/services/bad"), 502)
    assert body["definition"] == "bad" and "missing_table" not in body["detail"]


async def test_statement_timeout_postgres(tmp_path, postgres_url):
    gw, client = await start_gateway(settings_for(
        tmp_path, databases={"pg": {"url": postgres_url, "statement_timeout": "200ms"}}))
    try:
        await gw.define("s.yaml", """
            name: sleepy
            action: {type: sql, database: pg, query: "SELECT pg_sleep(2)", result: scalar}
        """)
        assert_problem(await gw.call("GET", "/services/sleepy"), 504)
    finally:
        await client.aclose()
        await gw.runtime.stop()


def handler_module(directory: Path) -> str:
    name = f"handlers_{uuid.uuid4().hex[:8]}"
    (directory / f"{name}.py").write_text(
        "import asyncio\n"
        "from servicegate.actions import ActionResult\n"
        "from servicegate.web.problems import ProblemError\n\n"
        "def total(ctx):\n"
        "    return {'total': sum(ctx.body['values']), 'who': ctx.principal['name']}\n\n"
        "async def created(ctx):\n"
        "    await asyncio.sleep(0)\n"
        "    return ActionResult(201, {'X-Made': 'yes'}, {'q': ctx.query})\n\n"
        "def nothing(ctx):\n"
        "    return None\n\n"
        "def crash(ctx):\n"
        "    raise RuntimeError('secret-ish detail')\n\n"
        "def refuse(ctx):\n"
        "    raise ProblemError(409, 'already there')\n\n"
        "def steps(ctx):\n"
        "    return {'seen': ctx.steps['first']['body']}\n"
    )
    return name


async def test_python_sync_async_and_errors(dgw):
    module = handler_module(dgw.directory)
    for fn in ("total", "created", "nothing", "crash", "refuse"):
        dgw.write(f"{fn}.yaml", f"name: {fn}\naction: {{type: python, handler: '{module}:{fn}'}}\n")
    report = await dgw.runtime.definitions.reload()
    assert not report.problems
    r = await dgw.call("POST", "/services/total", json={"values": [1, 2, 3]})
    assert r.json() == {"total": 6, "who": "caller"}
    r = await dgw.call("GET", "/services/created?a=1")
    assert r.status_code == 201 and r.headers["x-made"] == "yes" and r.json() == {"q": {"a": "1"}}
    assert (await dgw.call("GET", "/services/nothing")).content == b"{}"
    body = assert_problem(await dgw.call("GET", "/services/crash"), 500)
    assert "secret-ish" not in body["detail"] and body["definition"] == "crash"
    assert_problem(await dgw.call("GET", "/services/refuse"), 409)


async def test_pipeline_steps_when_and_response(dgw, upstream):
    module = handler_module(dgw.directory)
    await dgw.define("p.yaml", f"""
        name: flow
        methods: [POST]
        action:
          type: pipeline
          steps:
            - name: first
              type: static
              body: {{n: "{{{{ body.n }}}}"}}
            - name: skipped
              when: "steps.first.body.n > 10"
              type: static
              body: never
            - name: remote
              type: http
              url: "{upstream.url}/items"
              method: GET
              query: none
              body: none
            - name: py
              type: python
              handler: "{module}:steps"
          response:
            status: 202
            headers: {{X-Steps: "{{{{ steps | list | join(',') }}}}"}}
            body:
              n: {{$jmespath: "steps.first.body.n"}}
              names: {{$jmespath: "steps.remote.body.items[*].name"}}
              py: "{{{{ steps.py.body }}}}"
    """)
    r = await dgw.call("POST", "/services/flow", json={"n": 3})
    assert r.status_code == 202, r.text
    assert r.headers["x-steps"] == "first,remote,py"
    assert r.json() == {"n": 3, "names": ["n0", "n1", "n2"], "py": {"seen": {"n": 3}}}


async def test_pipeline_failing_step_names_the_step(dgw, upstream):
    await dgw.define("p.yaml", f"""
        name: flow
        action:
          type: pipeline
          steps:
            - {{name: ok, type: static, body: 1}}
            - {{name: upstream, type: http, url: "{upstream.url}/fail"}}
            - {{name: after, type: static, body: 2}}
    """)
    body = assert_problem(await dgw.call("GET", "/services/flow"), 502)
    assert body["step"] == "upstream" and "upstream" in body["detail"]
    assert body["definition"] == "flow"


async def test_pipeline_last_step_answers_by_default(dgw):
    await dgw.define("p.yaml", """
        name: flow
        action:
          type: pipeline
          steps:
            - {name: a, type: static, body: {x: 1}}
            - {name: b, type: static, status: 201, body: "{{ steps.a.body.x + 1 }}"}
    """)
    r = await dgw.call("GET", "/services/flow")
    assert r.status_code == 201 and r.json() == 2
