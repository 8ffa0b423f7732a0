"""The `event` action and `refreshcache`: definitions raise events that reach real receivers."""

import textwrap

import orjson
import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from servicegate.storage.schema import deliveries
from tests.conftest import make_settings
from tests.support.receivers import Receiver
from tests.test_auth_api import assert_problem

SECRET = "event-action-secret"


@pytest.fixture
def settings(tmp_path, database_url):
    (tmp_path / "definitions").mkdir()
    return make_settings(tmp_path, database_url, webhooks={
        "retry_schedule": ["0s", "100ms"], "poll_interval": "50ms", "jitter": 0})


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


def write(gateway, name, text):
    path = gateway.runtime.settings.definitions.dir / name
    path.write_text(textwrap.dedent(text))


PAYMENT = """
    name: paid
    expose: [callback]
    methods: [POST]
    auth: {mode: none}
    action:
      type: pipeline
      steps:
        - name: raise
          type: event
          event: Payment
          id: "pay-{{ body.invoice }}"
          data: {invoice: "{{ body.invoice }}", amount: "{{ body.amount | float }}"}
      response:
        body: {ok: true, eventId: "{{ steps.raise.body.eventId }}"}
"""


async def subscribe(gateway, receiver, *events):
    sub = await gateway.new_client("partner", "webhooks")
    r = await gateway.client.post("/webhooks", headers={"X-API-Key": sub["api_key"]}, json={
        "events": list(events), "url": receiver.url(), "secret": SECRET})
    assert r.status_code == 200, r.text


async def test_callback_raises_an_event_once_per_id(gateway, receiver):
    await subscribe(gateway, receiver, "payment")
    gateway.runtime.start_workers()
    write(gateway, "paid.yaml", PAYMENT)
    assert not (await gateway.runtime.definitions.reload()).problems

    first = await gateway.client.post("/callback/paid", json={"invoice": "INV-7", "amount": "12.5"})
    assert first.status_code == 200, first.text
    event_id = first.json()["eventId"]
    assert event_id == "pay-INV-7" and first.json()["ok"] is True
    again = await gateway.client.post("/callback/paid", json={"invoice": "INV-7", "amount": "12.5"})
    assert again.json()["eventId"] == event_id

    got = await receiver.wait_for(1)
    payload = Webhook(SECRET.encode()).verify(got[0].body, got[0].headers)
    assert payload["event"] == "payment" and payload["id"] == event_id
    assert payload["data"] == {"invoice": "INV-7", "amount": 12.5}
    # The provider's retry did not deliver a second time.
    await gateway.client.post("/callback/paid", json={"invoice": "INV-8", "amount": "1"})
    got = await receiver.wait_for(2)
    assert [orjson.loads(g.body)["id"] for g in got] == ["pay-INV-7", "pay-INV-8"]


async def test_event_action_plain_answer_and_bad_ids(gateway):
    write(gateway, "raise.yaml", """
        name: raise
        methods: [POST]
        action: {type: event, event: debtinsert, data: "{{ body }}", id: "{{ body.ref | default('') }}"}
    """)
    assert not (await gateway.runtime.definitions.reload()).problems
    creds = await gateway.new_client("svc", "services")
    h = {"X-API-Key": creds["api_key"]}
    r = await gateway.client.post("/services/raise", json={"ref": "d-1", "amount": 3}, headers=h)
    assert r.status_code == 202 and r.json() == {"eventId": "d-1", "event": "debtinsert"}
    r = await gateway.client.post("/services/raise", json={"ref": "x" * 300}, headers=h)
    assert_problem(r, 400)
    r = await gateway.client.post("/services/raise", json={"amount": 3}, headers=h)
    assert r.status_code == 202 and r.json()["eventId"].startswith("evt")


@pytest.mark.parametrize(
    ("event", "reason"),
    [("nosuchevent", "unknown event"), ("jobcomplete", "raised by the gateway")],
)
async def test_event_names_are_checked_at_load(gateway, event, reason):
    write(gateway, "bad.yaml", f"name: bad\naction: {{type: event, event: {event}}}\n")
    report = await gateway.runtime.definitions.reload()
    assert any(reason in p.reason for p in report.problems), [str(p) for p in report.problems]
    assert gateway.runtime.definitions.get("bad") is None


async def test_reload_raises_refreshcache_once_per_change(gateway, receiver):
    await subscribe(gateway, receiver, "refreshcache")
    runtime = gateway.runtime
    runtime.settings.definitions.watch = True
    await runtime.start_background()
    before = runtime._definitions_seen
    write(gateway, "hello.yaml", "name: hello\naction: {type: static, body: {v: 1}}\n")
    report = await runtime.definitions.reload()
    got = await receiver.wait_for(1)
    payload = orjson.loads(got[0].body)
    assert payload["event"] == "refreshcache"
    assert payload["data"]["added"] == ["hello"] and payload["data"]["reason"] == "definitions"
    # Another worker process that loaded the same change announces it with the same id.
    runtime._definitions_seen = before
    await runtime._announce_reload(report)
    write(gateway, "hello.yaml", "name: hello\naction: {type: static, body: {v: 2}}\n")
    await runtime.definitions.reload()
    got = await receiver.wait_for(2)
    assert orjson.loads(got[1].body)["data"]["changed"] == ["hello"]
    # the announcement made twice is one event with one delivery (both are committed by now)
    async with runtime.engine.connect() as conn:
        stored = (await conn.execute(select(func.count()).select_from(deliveries))).scalar()
    assert stored == 2 and len(receiver.requests) == 2
