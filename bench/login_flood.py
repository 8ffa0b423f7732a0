"""A `python` definition while clients flood the token endpoint with bad secrets.

    .venv/bin/python -m bench.login_flood              (BENCH_DURATION seconds per phase)
    BENCH_COMPARE_SRC=/path/to/other/checkout/src .venv/bin/python -m bench.login_flood

One `servicegate serve` (one worker, SQLite). A client calls `POST /services/score` (a sync
`python` handler) one request at a time: first idle, then while 16 concurrent clients, in a
process of their own, send bad secrets for one client id to `POST /oauth2/token` as fast as
they are answered. Reported: p50 of the definition idle and under the flood, and their ratio
(the target: under 2x); what the attackers got. BENCH_COMPARE_SRC adds the same rows for
another checkout's `src` (e.g. main) in the same run.
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


def p50_ms(url: str, key: str, seconds: float) -> tuple[float, int]:
    """The definition's median latency over `seconds`, one request at a time."""
    samples = []
    with httpx.Client(headers={"X-API-Key": key}) as client:
        for _ in range(20):  # warm-up
            client.post(f"{url}/services/score", json={"balance": 4200})
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            r = client.post(f"{url}/services/score", json={"balance": 4200})
            samples.append(time.perf_counter() - started)
            assert r.status_code == 200, r.text
    return statistics.median(samples) * 1000, len(samples)


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
        idle, n_idle = p50_ms(gw.url, caller["api_key"], DURATION)
        attackers = subprocess.Popen(
            [sys.executable, "-m", "bench.login_flood", "--attack", gw.url,
             victim["client_id"], str(DURATION + 3)],
            stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)  # the flood under way
        flooded, n_flooded = p50_ms(gw.url, caller["api_key"], DURATION)
        out, _ = attackers.communicate(timeout=DURATION + 120)
    statuses = json.loads(out.strip().splitlines()[-1])
    total = sum(statuses.values())
    got = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
    return (f"| {label} | {idle:.2f} ({n_idle}) | {flooded:.2f} ({n_flooded}) | "
            f"{flooded / idle:.2f}x | {total / (DURATION + 3):,.0f} /s: {got} |")


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
    print("| gateway | p50 ms idle (requests) | p50 ms flooded (requests) | flooded ÷ idle | "
          "token endpoint answers |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
