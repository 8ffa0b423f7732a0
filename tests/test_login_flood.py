"""The token endpoint under a flood of bad secrets: failures throttled per client id and per
source address (429 with Retry-After, before any hash), secrets verified on threads of their
own with a bounded wait, `userloginfailed` events coalesced. In process, both backends."""

import asyncio
import base64
import threading
import time

import pytest
from sqlalchemy import select

from servicegate.auth import credentials
from servicegate.storage.schema import events
from tests.conftest import make_settings
from tests.test_auth_api import assert_problem

WINDOW = 60.0  # long enough that no bucket refills during a test
EVENT_WINDOW = 2.0


@pytest.fixture
def settings(tmp_path, database_url):
    return make_settings(tmp_path, database_url, auth={
        "login_failures": 3, "login_failures_per_address": 6,
        "login_failure_window": f"{WINDOW:g}s", "secret_workers": 1, "secret_queue": 1})


async def attempt(gw, client_id, secret, **headers):
    return await gw.client.post("/oauth2/token", headers=headers, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})


async def failures(gw):
    async with gw.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(events.c.data).where(
            events.c.event == "userloginfailed").order_by(events.c.created_at))).all()
    return [row.data for row in rows]


@pytest.fixture
def verifications(monkeypatch):
    """The real argon2 verification, counted, with the thread it ran on."""
    seen: list[str] = []
    real = credentials.verify_secret

    def counted(secret_hash, secret):
        seen.append(threading.current_thread().name)
        return real(secret_hash, secret)

    monkeypatch.setattr(credentials, "verify_secret", counted)
    return seen


async def test_failures_per_client_id_are_throttled_before_any_hash(gateway, verifications):
    creds = await gateway.new_client("victim", "services")
    for _ in range(3):
        assert (await attempt(gateway, creds["client_id"], "wrong")).status_code == 401
    assert len(verifications) == 3
    assert all(name.startswith("secret-verify") for name in verifications)
    # even the right secret waits now: the attempt is refused before it is checked
    r = await attempt(gateway, creds["client_id"], creds["client_secret"])
    body = assert_problem(r, 429)
    assert body["detail"] == "too many failed client authentications; retry later"
    assert 1 <= int(r.headers["retry-after"]) <= WINDOW / 3 + 1  # one attempt's worth
    assert body["retryAfter"] == int(r.headers["retry-after"])
    assert r.headers["cache-control"] == "no-store"
    assert len(verifications) == 3
    # HTTP Basic is the same endpoint and the same check
    basic = base64.b64encode(f"{creds['client_id']}:wrong".encode()).decode()
    r = await gateway.client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                  headers={"Authorization": f"Basic {basic}"})
    assert_problem(r, 429)
    # another client from the same address is not held up by this one
    other = await gateway.new_client("other", "services")
    assert (await attempt(gateway, other["client_id"], other["client_secret"])).status_code == 200


async def test_concurrent_attempts_cannot_pass_the_limit_together(gateway, verifications):
    """An undecided attempt already counts: eight at once for one client id get at most
    three verifications (the limit), the others 429."""
    creds = await gateway.new_client("crowded", "services")
    answers = await asyncio.gather(*(attempt(gateway, creds["client_id"], "wrong")
                                     for _ in range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert 1 <= statuses.count(401) <= 3 and set(statuses) == {401, 429}, statuses
    assert len(verifications) == statuses.count(401)


async def test_failures_per_address_are_throttled_across_client_ids(gateway, verifications):
    for i in range(6):  # invented ids: each its own bucket, one address
        assert (await attempt(gateway, f"cl_invented{i}", "wrong")).status_code == 401
    creds = await gateway.new_client("fine", "services")
    r = await attempt(gateway, creds["client_id"], creds["client_secret"])
    assert_problem(r, 429)
    assert len(verifications) == 6


async def test_verifications_beyond_the_queue_are_refused_not_queued(gateway, monkeypatch):
    creds = await gateway.new_client("busy", "services")
    release = threading.Event()
    started = threading.Semaphore(0)
    real = credentials.verify_secret

    def held(secret_hash, secret):
        started.release()
        release.wait(10)
        return real(secret_hash, secret)

    monkeypatch.setattr(credentials, "verify_secret", held)
    # one thread verifying and one verification waiting fill the guard
    first = [asyncio.create_task(attempt(gateway, creds["client_id"], creds["client_secret"]))
             for _ in range(2)]
    assert await asyncio.to_thread(started.acquire, True, 10)
    deadline = time.monotonic() + 10
    while gateway.runtime.logins.in_flight < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    r = await attempt(gateway, creds["client_id"], creds["client_secret"])
    body = assert_problem(r, 429)
    assert body["detail"] == "too many client authentications at once; retry later"
    assert r.headers["retry-after"] == "1"
    release.set()
    assert [t.status_code for t in await asyncio.gather(*first)] == [200, 200]


class TestCoalescedEvents:
    @pytest.fixture
    def settings(self, tmp_path, database_url):  # counts events, not refusals
        return make_settings(tmp_path, database_url, auth={
            "login_failures": 100, "login_failure_window": f"{EVENT_WINDOW:g}s"})

    async def test_login_failed_events_are_coalesced_per_client_id(self, gateway):
        creds = await gateway.new_client("target", "services")
        assert (await attempt(gateway, "cl_elsewhere", "wrong")).status_code == 401
        for _ in range(5):
            assert (await attempt(gateway, creds["client_id"], "wrong")).status_code == 401
        published = await failures(gateway)
        assert [(e["clientId"], e["count"]) for e in published[:2]] == [
            ("cl_elsewhere", 1), (creds["client_id"], 1)]  # the first ones at once
        assert "wrong" not in str(published)

        def counts() -> list[int]:
            return [e["count"] for e in published if e["clientId"] == creds["client_id"]]

        # the later ones are counted and published as one event when the window ends (how
        # many windows five argon2 verifications span depends on the machine)
        deadline = time.monotonic() + 5 * EVENT_WINDOW + 10
        while sum(counts()) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            published = await failures(gateway)
        assert sum(counts()) == 5 and len(counts()) <= 3, counts()
        assert published[-1]["reason"] == "client authentication failed"
