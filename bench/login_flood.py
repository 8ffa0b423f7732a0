"""A `python` definition while clients flood the token endpoint with bad secrets.

    .venv/bin/python -m bench.login_flood              (BENCH_DURATION seconds per phase)
    BENCH_COMPARE_SRC=/path/to/other/checkout/src .venv/bin/python -m bench.login_flood

One `servicegate serve` (one worker, SQLite). A client calls `POST /services/score` (a sync
`python` handler) 50 times a second on schedule, then one request after another: first
idle, then while 16 concurrent clients, in a process of their own, send bad secrets for one
client id to `POST /oauth2/token` as fast as they are answered. Reported: p50 and p99 on
schedule (the target: p50 flooded under 2x idle), p50 and the slowest answer one at a time
(a stall behind queued secret verifications shows there); what the attackers got.
BENCH_COMPARE_SRC adds the same rows for another checkout's `src` (e.g. main) in the same run.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter

import httpx

from bench.harness import DURATION, gateway

ATTACKERS = 16
RATE = 50  # definition requests per second, sent on schedule
HANDLER = '''
def score(ctx):
    body = ctx.body or {}
    return {"score": min(100, round(float(body.get("balance", 0)) / 100))}
'''
DEFINITION = """
name: score
methods: [POST]
action: {type: python, handler: "bench_handlers:score"}
"""


def latencies(url: str, key: str, seconds: float) -> tuple[float, float]:
    """The definition's p50 and p99 latency (ms) over `seconds`. Open loop: a request
    starts every 1/RATE s whether or not the ones before have been answered, so a stall is
    sampled as often as it lasts (one request at a time samples it once)."""
    return asyncio.run(_open_loop(url, key, seconds))


async def _open_loop(url: str, key: str, seconds: float) -> tuple[float, float]:
    samples: list[float] = []

    async def one(client: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        r = await client.post(f"{url}/services/score", json={"balance": 4200})
        samples.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, r.text

    limits = httpx.Limits(max_connections=256)
    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=60, limits=limits) as client:
        for _ in range(20):  # warm-up
            await one(client)
        samples.clear()
        tasks = []
        started = time.monotonic()
        for i in range(int(seconds * RATE)):
            await asyncio.sleep(max(0.0, started + i / RATE - time.monotonic()))
            tasks.append(asyncio.create_task(one(client)))
        await asyncio.gather(*tasks)
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def one_at_a_time(url: str, key: str, seconds: float) -> tuple[float, float, int]:
    """p50 and slowest latency (ms) of requests sent one after another on one connection,
    and how many (a stall shows as the slowest, once per stall)."""
    samples = []
    with httpx.Client(headers={"X-API-Key": key}, timeout=60) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            r = client.post(f"{url}/services/score", json={"balance": 4200})
            samples.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200, r.text
    return statistics.median(samples), max(samples), len(samples)


async def _attack(url: str, client_id: str, seconds: float) -> None:
    """ATTACKERS concurrent loops of bad secrets; prints the statuses as JSON."""
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    form = {"grant_type": "client_credentials", "client_id": client_id,
            "client_secret": "sgs_" + "x" * 43}

    async def one(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            try:
                statuses[(await client.post(f"{url}/oauth2/token", data=form)).status_code] += 1
            except httpx.HTTPError:
                statuses[0] += 1

    limits = httpx.Limits(max_connections=ATTACKERS)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await asyncio.gather(*(one(client) for _ in range(ATTACKERS)))
    print(json.dumps(dict(statuses)))


def measure(label: str, **env: str) -> str:
    definitions = {"score.yaml": DEFINITION, "bench_handlers.py": HANDLER}
    with gateway(definitions=definitions, **env) as gw:
        caller = gw.create_client("caller", "services")
        victim = gw.create_client("victim", "services")
        idle = latencies(gw.url, caller["api_key"], DURATION)
        idle_seq = one_at_a_time(gw.url, caller["api_key"], DURATION)
        attackers = subprocess.Popen(
            [sys.executable, "-m", "bench.login_flood", "--attack", gw.url,
             victim["client_id"], str(2 * DURATION + 3)],
            stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)  # the flood under way
        flooded = latencies(gw.url, caller["api_key"], DURATION)
        flooded_seq = one_at_a_time(gw.url, caller["api_key"], DURATION)
        out, _ = attackers.communicate(timeout=DURATION + 120)
    statuses = json.loads(out.strip().splitlines()[-1])
    total = sum(statuses.values())
    got = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
    return (f"| {label} | {idle[0]:.2f} / {idle[1]:.1f} | {flooded[0]:.2f} / {flooded[1]:.1f} | "
            f"{flooded[0] / idle[0]:.2f}x | {idle_seq[0]:.2f} / {idle_seq[1]:.0f} | "
            f"{flooded_seq[0]:.2f} / {flooded_seq[1]:.0f} | "
            f"{total / (2 * DURATION + 3):,.0f} /s: {got} |")


def main() -> None:
    if sys.argv[1:2] == ["--attack"]:
        url, client_id, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
        asyncio.run(_attack(url, client_id, seconds))
        return
    rows = [measure("ServiceGate")]
    compare = os.environ.get("BENCH_COMPARE_SRC")
    if compare:
        rows.append(measure(f"compare: {compare}", PYTHONPATH=compare))
    print(f"### Login flood ({platform.node()}, {ATTACKERS} bad-secret clients, {DURATION}s "
          "per phase, one worker)\n")
    print(f"| gateway | open loop ({RATE}/s) idle p50 / p99 ms | flooded p50 / p99 ms | "
          "p50 flooded ÷ idle | one at a time idle p50 / max ms | flooded p50 / max ms | "
          "token endpoint answers |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
