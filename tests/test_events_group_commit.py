"""Concurrent publishes are group-committed: each caller still gets its own answer, and the
stored events and deliveries are exactly those of the calls run one after the other."""

import asyncio
from collections import Counter

from sqlalchemy import select

from servicegate.storage.schema import deliveries, events
from servicegate.webhooks.publisher import EventIdConflict, NewEvent
from tests.test_auth_api import assert_problem


def key(creds):
    return {"X-API-Key": creds["api_key"]}


async def stored(gateway):
    async with gateway.runtime.engine.connect() as conn:
        evts = {r.id: r for r in (await conn.execute(
            select(events.c.id, events.c.source, events.c.owner, events.c.data))).all()}
        dlvs = (await conn.execute(select(deliveries.c.event_id, deliveries.c.client_id))).all()
    return evts, Counter((d.event_id, d.client_id) for d in dlvs)


async def test_fifty_concurrent_publishes_each_get_their_answer(gateway):
    subs = [await gateway.new_client(f"sub{i}", "webhooks") for i in range(2)]
    for c in subs:
        r = await gateway.client.post("/webhooks", headers=key(c), json={
            "events": ["payment", "debtinsert"], "url": "http://127.0.0.1:9/h"})
        assert r.status_code == 200
    owner = subs[0]["client_id"]
    events_api = gateway.runtime.events
    await events_api.publish("payment", {"n": "before"}, id="taken", source="other-source")

    calls = []  # (coroutine, expected answer: id or exception type)
    for i in range(30):  # ten ids, each three times from the same source: one event each
        calls.append((events_api.publish("payment", {"dup": i % 10}, id=f"dup-{i % 10}",
                                         source="src-a"), f"dup-{i % 10}"))
    for i in range(12):
        calls.append((events_api.publish("debtinsert", {"n": i}, source="src-a"), None))
    calls.append((events_api.publish("payment", {"n": "x"}, id="taken", source="src-a"),
                  EventIdConflict))
    # a conflicting id fails its whole batch, and only it
    calls.append((events_api.publish_many([NewEvent("payment", {"n": "lost"}, "batch-fresh"),
                                           NewEvent("payment", {}, "taken")], source="src-a"),
                  EventIdConflict))
    # the same new id from two sources in one group: the first wins, the second conflicts
    calls.append((events_api.publish("payment", {"n": "first"}, id="race", source="src-a"),
                  "race"))
    calls.append((events_api.publish("payment", {"n": "second"}, id="race", source="src-b"),
                  EventIdConflict))
    calls.append((events_api.publish("payment", {"n": "own"}, id="owned", owner=owner), "owned"))
    calls.append((events_api.publish_many([NewEvent("debtinsert", {"b": 1}, "b-1"),
                                           NewEvent("debtinsert", {"b": 2}, "b-2"),
                                           NewEvent("debtinsert", {"b": 1}, "b-1")],
                                          source="src-b"), ["b-1", "b-2", "b-1"]))
    calls.append((events_api.publish("debtinsert", {"n": 12}, source="src-a"), None))
    calls.append((events_api.publish("payment", {"n": "last"}, id="last", source="src-b"),
                  "last"))
    assert len(calls) == 50
    answers = await asyncio.gather(*(c for c, _ in calls), return_exceptions=True)

    generated = []
    for (_, expected), got in zip(calls, answers, strict=True):
        if expected is None:
            assert isinstance(got, str) and got.startswith("evt_")
            generated.append(got)
        elif isinstance(expected, type):
            assert isinstance(got, expected), got
        else:
            assert got == expected
    conflicts = [a for a in answers if isinstance(a, EventIdConflict)]
    assert sorted(c.event_id for c in conflicts) == ["race", "taken", "taken"]

    evts, per = await stored(gateway)
    expected_ids = ({"taken", "race", "owned", "b-1", "b-2", "last"}
                    | {f"dup-{i}" for i in range(10)} | set(generated))
    assert set(evts) == expected_ids  # nothing of the failed calls or the failed batch
    assert evts["taken"].source == "other-source"
    assert evts["race"].source == "src-a" and evts["race"].data == {"n": "first"}
    assert evts["owned"].owner == owner and evts["b-1"].data == {"b": 1}
    sub_ids = [c["client_id"] for c in subs]
    for event_id in expected_ids:
        wanted = [owner] if event_id == "owned" else sub_ids
        assert {c: per[(event_id, c)] for c in sub_ids} == {c: int(c in wanted) for c in sub_ids}
    assert sum(per.values()) == 2 * len(expected_ids) - 1

    # a call whose data cannot be stored fails the group's transaction: the group is then
    # stored call by call, so only that caller fails
    fallback = await asyncio.gather(
        events_api.publish("payment", {"n": "ok-1"}, id="ok-1", source="src-a"),
        events_api.publish("payment", {"bad": object()}, id="bad", source="src-a"),
        events_api.publish("payment", {}, id="dup-0", source="src-a"),
        events_api.publish("payment", {"n": "ok-2"}, id="ok-2", source="src-b"),
        return_exceptions=True)
    assert fallback[0] == "ok-1" and fallback[2] == "dup-0" and fallback[3] == "ok-2"
    assert isinstance(fallback[1], Exception) and not isinstance(fallback[1], EventIdConflict)
    evts, per = await stored(gateway)
    assert set(evts) == expected_ids | {"ok-1", "ok-2"}
    assert sum(per.values()) == 2 * len(expected_ids) - 1 + 4

    # publishing any of them again is idempotent: same answers, no second delivery
    again = await asyncio.gather(
        *(events_api.publish("payment", {}, id=f"dup-{i}", source="src-a") for i in range(10)),
        events_api.publish("payment", {}, id="race", source="src-b"),
        return_exceptions=True)
    assert again[:10] == [f"dup-{i}" for i in range(10)]
    assert isinstance(again[10], EventIdConflict)
    assert await stored(gateway) == (evts, per)


async def test_concurrent_single_event_requests_over_http(gateway):
    sub = await gateway.new_client("sub", "webhooks")
    await gateway.client.post("/webhooks", headers=key(sub), json={
        "events": ["payment"], "url": "http://127.0.0.1:9/h"})
    a = await gateway.new_client("a", "events:publish")
    b = await gateway.new_client("b", "events:publish")
    r = await gateway.client.post("/events", headers=key(b), json={"event": "payment", "id": "b"})
    assert r.status_code == 202
    bodies = [{"event": "payment", "id": f"e-{i % 20}", "data": {"i": i}} for i in range(40)]
    bodies += [{"event": "payment", "data": {"i": i}} for i in range(9)] + [
        {"event": "payment", "id": "b"}]
    answers = await asyncio.gather(*(gateway.client.post("/events", headers=key(a), json=body)
                                     for body in bodies))
    for body, r in zip(bodies, answers, strict=True):
        if body.get("id") == "b":
            assert_problem(r, 409)
            continue
        assert r.status_code == 202, r.text
        if "id" in body:
            assert r.json() == {"id": body["id"]}
    evts, per = await stored(gateway)
    assert len(evts) == 1 + 20 + 9
    assert per == Counter({(i, sub["client_id"]): 1 for i in evts})


