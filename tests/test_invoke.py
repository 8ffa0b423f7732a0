"""`invoke` without HTTP: a stored context (as a job worker would keep it) runs the same action."""

import base64

import orjson
from starlette.requests import Request

from servicegate.actions import InvocationContext
from servicegate.actions.invoke import invoke
from servicegate.auth.principal import Principal
from servicegate.web.invocation import build_context, stored_context


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


async def test_an_asynchronous_submission_stores_what_the_context_would(dgw):
    """`stored_context` (asynchronous submissions) is `build_context(...).to_json()`."""
    await dgw.define("d.yaml", """
        name: stored
        methods: [POST]
        context: {headers: [X-Trace]}
        action: {type: static, body: {}}
    """)
    definition = dgw.runtime.definitions.get("stored")
    raw = b'{"k": [1, "\xc3\xa9"]}'
    request = Request({
        "type": "http", "method": "POST", "path": "/services/stored/a%20b/c",
        "raw_path": b"/services/stored/a%20b/c", "query_string": b"x=1&x=2",
        "headers": [(b"x-trace", b"t1"), (b"content-type", b"application/json"),
                    (b"x-trace", b"t2"), (b"x-other", b"no")],
        "state": {"request_id": "rid-7"},
    })
    principal = Principal(client_id="cl_1", name="n", scopes=frozenset({"services", "a"}),
                          via="api_key")
    args = (["a b", "c"], [("x", "1"), ("x", "2")], raw, orjson.loads(raw))
    stored = stored_context(request.scope, definition, principal, *args)
    expected = build_context(request.scope, definition, "services", principal, *args,
                             None).to_json()
    assert stored.pop("received_at") >= expected.pop("received_at") - 1
    assert orjson.loads(orjson.dumps(stored)) == orjson.loads(orjson.dumps(expected))
    assert stored["headers"]["x-trace"] == "t1, t2" and "x-other" not in stored["headers"]
    assert base64.b64decode(stored["raw_body"]) == raw
    # empty fields are left out of the stored form; reading it back restores them
    bare = stored_context(request.scope, definition, principal, [], [], b"", None)
    assert not {"segments", "query", "body", "raw_body", "form"} & bare.keys()
    restored = InvocationContext.from_json(orjson.loads(orjson.dumps(bare)))
    assert (restored.segments, restored.query, restored.body, restored.raw_body,
            restored.form) == ([], [], None, b"", None)
