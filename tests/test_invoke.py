"""`invoke` without HTTP: a stored context (as a job worker would keep it) runs the same action."""

import orjson

from servicegate.actions import InvocationContext
from servicegate.actions.invoke import invoke


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
