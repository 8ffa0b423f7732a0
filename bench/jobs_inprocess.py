"""In-process cost of an asynchronous submission (`?async=true` → 202), in µs per request.

    .venv/bin/python -m bench.jobs_inprocess                       (BENCH_REQUESTS=20000)
    .venv/bin/python -m bench.jobs_inprocess --database postgresql://127.0.0.1:5432/test
    .venv/bin/python -m bench.jobs_inprocess --profile async       (cProfile, top 40)
    .venv/bin/python -m bench.jobs_inprocess --only async          (one target: for py-spy)

Calls the ASGI app directly (the app `servicegate serve` runs, job workers off) from
BENCH_CONCURRENCY concurrent tasks (default 64, as the wrk throughput point), so group commit
batches submissions as under load, for the same `static` definition called synchronously
(the baseline) and with `?async=true`. Reports the process CPU time per request (the
database driver's thread included; not the PostgreSQL server's) and the wall time per
request; the event loop thread's own CPU time apart. Compare only figures from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import empty_tables, measure_calls, start_in_process
from bench.jobs import DEFINITION

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "20000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "64"))


class _Call:
    """One reusable ASGI request: scope template, receive and a send that checks the status."""

    def __init__(self, app: Any, path: str, query: bytes, key: str, status: int) -> None:
        self.app = app
        self.template = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query, "root_path": "", "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"),
                        (b"accept", b"*/*"), (b"x-api-key", key.encode())],
        }
        self.expected = status

    async def receive(self) -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def __call__(self) -> None:
        status = 0

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(dict(self.template), self.receive, send)
        if status != self.expected:
            raise RuntimeError(f"{self.template['path']} answered {status}")


async def _run(n: int, call: _Call) -> tuple[float, float, float]:
    """(process CPU µs, event loop thread CPU µs, wall µs) per request for n requests from
    CONCURRENCY tasks."""
    per_task = max(1, n // CONCURRENCY)

    async def loop() -> None:
        for _ in range(per_task):
            await call()

    cpu, own, wall = time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
    total = per_task * CONCURRENCY
    return ((time.process_time() - cpu) / total * 1e6,
            (time.thread_time() - own) / total * 1e6,
            (time.perf_counter() - wall) / total * 1e6)


async def main(database: str | None, profile: str | None, only: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="sg-bench-jobs-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "definitions").mkdir()
        (tmp / "definitions" / "bench.yaml").write_text(DEFINITION)
        url = database or f"sqlite:///{tmp / 'gateway.db'}"
        runtime, app, key = await start_in_process(tmp, url, jobs={"workers": 0})
        calls = {
            "sync": _Call(app, "/services/bench-static", b"", key, 200),
            "async": _Call(app, "/services/bench-static", b"async=true", key, 202),
        }
        try:
            figures = await measure_calls(_run, calls, warmup=CONCURRENCY * 10, requests=REQUESTS,
                                          profile=profile, only=only)
            if figures is None:
                return
        finally:
            await runtime.stop()
            await runtime.engine.dispose()
    backend = "PostgreSQL" if database else "SQLite"
    print(f"### Async submission in-process ({backend}, {REQUESTS} requests per target, "
          f"{CONCURRENCY} concurrent, best of 4)\n")
    print("| target | process CPU µs/request | event loop CPU µs/request | wall µs/request |")
    print("|---|---:|---:|---:|")
    for name, (cpu, own, wall) in figures.items():
        print(f"| {name} | {cpu:.1f} | {own:.1f} | {wall:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--profile", choices=("sync", "async"))
    parser.add_argument("--only", choices=("sync", "async"))
    args = parser.parse_args()
    if args.database:
        empty_tables(args.database)
    asyncio.run(main(args.database, args.profile, args.only))
