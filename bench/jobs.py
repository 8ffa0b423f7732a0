"""Asynchronous jobs benchmark: 202 answers/s for a `static` definition called with
`?async=true`, against the same definition called synchronously in the same run (the
baseline); then jobs completed/s by one `servicegate worker` draining the backlog.

    .venv/bin/python -m bench.jobs                  (BENCH_DURATION=5 seconds per wrk point)
    BENCH_DURATION=3 .venv/bin/python -m bench.jobs --database postgresql://postgres@127.0.0.1/test

Phases (each bounded in time):
1. sync `GET /services/bench-static` (baseline), and `?async=true` with the gateway's own job
   workers off (the pure submission path: validate, store, 202);
2. `?async=true` on a gateway running its job workers (the default deployment);
3. a `servicegate worker` drains the queued jobs: completed/s over at most BENCH_DRAIN seconds.
Throughput at 64 connections, p50/p99 at 8 (bench.harness.measure). Compare ratios only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import time
import urllib.request

from sqlalchemy import func, select

from bench.harness import (
    BIN,
    DURATION,
    TABLE_HEAD,
    empty_tables,
    gateway,
    measure,
    require_tools,
    row,
)

DRAIN = float(os.environ.get("BENCH_DRAIN", "20"))
DEFINITION = """name: bench-static
methods: [GET]
action: {type: static, body: {ok: true}}
"""


async def _counts(database_url: str) -> dict[str, int]:
    from servicegate.storage.engine import create_engine
    from servicegate.storage.schema import jobs

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(jobs.c.status, func.count())
                                       .group_by(jobs.c.status))).all()
    finally:
        await engine.dispose()
    return {status: int(n) for status, n in rows}


def counts(database_url: str) -> dict[str, int]:
    return asyncio.run(_counts(database_url))


def ready(url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
    """Wait until the definition (written after start-up, picked up by the watcher) answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=1):
                return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def phase(database: str | None, *, job_workers: int) -> tuple[str, dict[str, str], list]:
    """One gateway: (its database URL, the bench client, [(label, tput, lat), ...])."""
    if database:
        empty_tables(database)
    results = []
    with gateway(database, SERVICEGATE_JOBS__WORKERS=str(job_workers),
                 SERVICEGATE_WEBHOOKS__WORKERS="0") as gw:
        (gw.workdir / "definitions" / "bench.yaml").write_text(DEFINITION)
        client = gw.create_client("bench", "services")
        headers = {"X-API-Key": client["api_key"]}
        ready(f"{gw.url}/services/bench-static", headers)
        url = gw.env["SERVICEGATE_DATABASE__URL"]
        if job_workers == 0:
            results.append(("sync `static` definition (baseline)",
                            *measure(f"{gw.url}/services/bench-static", headers)))
            label = "`?async=true` → 202, job workers off"
        else:
            label = "`?async=true` → 202, job workers on"
        results.append((label, *measure(f"{gw.url}/services/bench-static?async=true", headers)))
        if job_workers == 0:
            before = counts(url)
            env = {**gw.env, "SERVICEGATE_JOBS__WORKERS": "1"}
            log = open(gw.workdir / "worker.log", "ab")
            proc = subprocess.Popen([str(BIN / "servicegate"), "worker"], env=env,
                                    cwd=gw.workdir, stdout=log, stderr=subprocess.STDOUT)
            try:
                start = time.monotonic()
                queued = before.get("pending", 0)
                done = 0
                while time.monotonic() - start < DRAIN:
                    time.sleep(0.5)
                    now = counts(url)
                    done = now.get("succeeded", 0) - before.get("succeeded", 0)
                    if done >= queued:
                        break
                elapsed = time.monotonic() - start  # includes the worker's start-up
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            results.append(("drain", queued, done, elapsed))
    return url, headers, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="PostgreSQL URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    require_tools("wrk")
    _, _, first = phase(args.database, job_workers=0)
    _, _, second = phase(args.database, job_workers=1)
    drain = next(r for r in first if r[0] == "drain")
    points = [r for r in first if r[0] != "drain"] + second
    baseline = points[0][1].rps
    backend = "PostgreSQL" if args.database else "SQLite"
    print(f"### Async jobs ({platform.node()}, {backend}, wrk -t1, {DURATION}s per point, "
          "one gateway worker process)\n")
    print(TABLE_HEAD)
    for label, tput, lat in points:
        print(row(label, tput, lat, baseline))
    _, queued, done, elapsed = drain
    print(f"\nJobs completed by one `servicegate worker` ([jobs] defaults): {done:,} of "
          f"{queued:,} queued in {elapsed:.1f}s = **{done / elapsed:,.0f} jobs/s** "
          "(worker start-up included).")


if __name__ == "__main__":
    main()
