"""Properties of the pieces jobs are built from: the stored context round-trips through JSON,
the backoff stays within its bounds, request fingerprints tell requests apart."""

import base64

import orjson
from hypothesis import given
from hypothesis import strategies as st

from servicegate.actions.context import InvocationContext
from servicegate.config import JobsConfig
from servicegate.jobs.policy import backoff
from servicegate.jobs.store import fingerprint

text = st.text(max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12)
contexts = st.builds(
    InvocationContext,
    definition=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    via=st.sampled_from(["services", "callback"]),
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    segments=st.lists(text, max_size=4),
    query=st.lists(st.tuples(text, text), max_size=4),
    headers=st.dictionaries(text, text, max_size=4),
    body=json_values,
    raw_body=st.binary(max_size=64),
    content_type=st.none() | text,
    form=st.none() | st.dictionaries(text, text, max_size=3),
    principal=st.none() | st.fixed_dictionaries({"client_id": text, "scopes": st.lists(text)}),
    request_id=text,
    received_at=st.floats(0, 4e9),
)


@given(contexts)
def test_context_round_trips_through_stored_json(context):
    stored = orjson.loads(orjson.dumps(context.to_json()))
    assert InvocationContext.from_json(stored) == context


@given(contexts, contexts)
def test_fingerprint_separates_different_requests(a, b):
    same = (a.method, a.definition, a.segments, a.query, a.raw_body) == \
        (b.method, b.definition, b.segments, b.query, b.raw_body)
    assert (fingerprint(a.to_json()) == fingerprint(b.to_json())) == same


def _full_form(context: InvocationContext) -> dict:
    """The stored form before empty fields were left out: every field."""
    return {"definition": context.definition, "via": context.via, "method": context.method,
            "segments": context.segments, "query": [list(p) for p in context.query],
            "headers": context.headers, "body": context.body,
            "raw_body": base64.b64encode(context.raw_body).decode("ascii"),
            "content_type": context.content_type, "form": context.form,
            "principal": context.principal, "request_id": context.request_id,
            "received_at": context.received_at}


@given(contexts)
def test_jobs_stored_in_the_full_form_still_run_as_they_were(context):
    stored = orjson.loads(orjson.dumps(_full_form(context)))
    assert InvocationContext.from_json(stored) == context


@given(contexts)
def test_fingerprint_is_the_same_for_the_full_stored_form(context):
    """Keys stored before empty fields were left out keep their digest."""
    assert fingerprint(_full_form(context)) == fingerprint(context.to_json())


@given(st.integers(0, 60), st.floats(0.0, 5.0), st.floats(0.0, 600.0), st.floats(0.0, 1.0))
def test_backoff_grows_within_bounds(attempts, first, cap, jitter):
    config = JobsConfig(retry_backoff=first, retry_backoff_max=cap, jitter=jitter)
    delay = backoff(config, attempts)
    base = min(first * 2 ** max(attempts - 1, 0), cap)
    assert base * (1 - jitter) - 1e-9 <= delay <= base * (1 + jitter) + 1e-9
