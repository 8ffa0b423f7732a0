"""`invoke` without HTTP: a stored context (as a job worker would keep it) runs the same action."""

import base64

import orjson
from sqlalchemy import select

from servicegate.actions import InvocationContext
from servicegate.definitions.invoke import invoke
from servicegate.storage.schema import jobs


async def test_context_round_trips_through_json_and_invokes(dgw, monkeypatch):
    monkeypatch.setenv("SG_INVOKE_ENV", "from-env")
    await dgw.define("d.yaml", """
        name: direct
        context: {env: [SG_INVOKE_ENV]}
        action:
          type: static
          status: 202
          body:
            who: "{{ principal.client_id }}"
            seg: "{{ segments }}"
            q: "{{ query_all }}"
            raw: "{{ raw }}"
            env: "{{ env.SG_INVOKE_ENV }}"
            now: "{{ now }}"
    """)
    context = InvocationContext(
        definition="direct", via="services", method="POST", segments=["a b", "c"],
        query=[("x", "1"), ("x", "2")], headers={"accept": "application/json"},
        body={"k": 1}, raw_body=b'{"k": 1}\xff', content_type="application/json",
        principal={"client_id": "cl_1", "name": "n", "scopes": ["services"], "via": "api_key"},
        request_id="rid-1",
    )
    stored = orjson.dumps(context.to_json())
    assert b"from-env" not in stored  # environment values are never stored
    rebuilt = InvocationContext.from_json(orjson.loads(stored))
    assert rebuilt == context
    result = await invoke(dgw.runtime.definitions.get("direct"), rebuilt, dgw.runtime)
    assert result.status == 202
    assert result.body["who"] == "cl_1" and result.body["seg"] == ["a b", "c"]
    assert result.body["q"] == {"x": ["1", "2"]} and result.body["env"] == "from-env"
    assert result.body["now"] == context.now and result.body["raw"].startswith('{"k": 1}')


async def test_an_asynchronous_submission_stores_the_invocation_context(dgw):
    """What a job keeps is the context the synchronous call would have run with."""
    await dgw.define("d.yaml", """
        name: stored
        methods: [POST]
        context: {headers: [X-Trace]}
        action: {type: static, body: {}}
    """)
    raw = b'{"k": [1, "\\u00e9"]}'
    r = await dgw.client.post(
        "/services/stored/a%20b/c?x=1&async=true&x=2", content=raw,
        headers=[("X-API-Key", dgw.key), ("x-trace", "t1"), ("content-type", "application/json"),
                 ("x-trace", "t2"), ("x-other", "no"), ("x-request-id", "rid-7")])
    assert r.status_code == 202, r.text
    async with dgw.runtime.engine.connect() as conn:
        stored = (await conn.execute(select(jobs.c.context).where(
            jobs.c.id == r.json()["jobId"]))).scalar_one()
    context = InvocationContext.from_json(stored)
    assert (context.definition, context.via, context.method) == ("stored", "services", "POST")
    assert context.segments == ["a b", "c"] and context.query == [("x", "1"), ("x", "2")]
    assert context.headers["x-trace"] == "t1, t2" and "x-other" not in context.headers
    assert context.raw_body == raw and context.body == {"k": [1, "\u00e9"]}
    assert context.content_type == "application/json" and context.request_id == "rid-7"
    assert context.principal is not None and context.principal["name"] == "caller"
    assert base64.b64decode(stored["raw_body"]) == raw
    # empty fields are left out of the stored form; reading it back restores them
    r = await dgw.call("POST", "/services/stored?async=true")
    async with dgw.runtime.engine.connect() as conn:
        bare = (await conn.execute(select(jobs.c.context).where(
            jobs.c.id == r.json()["jobId"]))).scalar_one()
    assert not {"segments", "query", "body", "raw_body", "form"} & bare.keys()
    restored = InvocationContext.from_json(bare)
    assert (restored.segments, restored.query, restored.body, restored.raw_body,
            restored.form) == ([], [], None, b"", None)
