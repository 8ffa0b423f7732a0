"""Delivery throughput only: the backlog-drain phase of `bench.webhooks`, quicker to repeat.

    .venv/bin/python -m bench.webhooks_drain [--database URL] [--events 3000] [--raw]
    .venv/bin/python -m bench.webhooks_drain --events 100 --valgrind cg.out   # instructions

Stores `--events` x 10 subscribers deliveries, starts one `servicegate worker` and waits until
nginx has logged them all. Prints the delivery rate, the worker's CPU per delivery (by thread),
with `--raw` the raw aiohttp ceiling of the same requests (runs before and after), and on
PostgreSQL the CPU of the worker's own database backends per delivery. `--valgrind FILE` runs
the worker under cachegrind (instruction counts: run two sizes and divide the difference).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import tempfile
from pathlib import Path

import aiohttp

from bench.harness import BIN, empty_database, process
from bench.webhooks import (
    EVENT_OF,
    SECRET,
    SUBSCRIBERS,
    arrival_rate,
    cpu_seconds,
    drain,
    ingest_gateway,
    nginx_sink,
    publish_all,
    raw_ceiling,
)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (the main thread as "main")."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK")
    return out


def backend_cpu(database: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to this database right now."""
    pids = subprocess.run(["psql", database, "-Atc", "SELECT pid FROM pg_stat_activity WHERE "
                           "datname = current_database() AND pid <> pg_backend_pid()"],
                          capture_output=True, text=True, check=True).stdout.split()
    return sum(cpu_seconds(int(p)) for p in pids)


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sg-bench-drain-"))
    (tmp / "definitions").mkdir()
    database = args.database or f"sqlite:///{tmp}/gateway.db"
    await empty_database(database)  # a run can be repeated on the same database
    with nginx_sink(tmp) as (sink, log):
        ingest, pub, sub = ingest_gateway(tmp, database)
        expected = args.events * SUBSCRIBERS
        with ingest.serve():
            async with aiohttp.ClientSession() as http:
                for (path, event), i in itertools.product(EVENT_OF.items(), range(SUBSCRIBERS)):
                    async with http.post(f"{ingest.url}/webhooks",
                                         headers={"X-API-Key": sub["api_key"]},
                                         json={"events": [event], "secret": SECRET,
                                               "url": f"http://127.0.0.1:{sink}{path}{i}"}) as resp:
                        assert resp.status == 200, await resp.text()
            before = await raw_ceiling(sink, expected) if args.raw else None
            await publish_all(ingest.url, pub["api_key"], args.events, "/s")
        cmd = [str(BIN / "servicegate"), "worker"]
        if args.valgrind:
            cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                   f"--cachegrind-out-file={args.valgrind}", str(BIN / "python"), *cmd]
        with process(cmd, env=ingest.env, cwd=tmp, log=tmp / "worker.log") as worker:
            start = thread_cpu(worker.pid)
            got, worker_us = await drain(log, "/s", expected, worker.pid)
            end = thread_cpu(worker.pid)
            backends = backend_cpu(database) if database.startswith("postgresql") else None
        after = await raw_ceiling(sink, expected) if args.raw else None
    rate = arrival_rate(got)
    by_thread = {k: round((v - start.get(k, 0.0)) / max(len(got), 1) * 1e6)
                 for k, v in end.items()}
    print(f"{len(got):,} delivered at {rate:,.0f}/s; worker {worker_us:.0f} µs per delivery "
          f"(by thread, start-up included: {by_thread})")
    if before and after:
        ceiling = (before[0] + after[0]) / 2
        raw_us = (before[1] + after[1]) / 2 / expected * 1e6
        print(f"raw ceiling {ceiling:,.0f}/s ({raw_us:.0f} µs per request): "
              f"{rate / ceiling:.1%} of it")
    if backends is not None:
        print(f"the worker's PostgreSQL backends: {backends / max(len(got), 1) * 1e6:.0f} µs "
              "per delivery (start-up included)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="gateway database URL (default: a fresh SQLite file)")
    parser.add_argument("--events", type=int, default=3000, help="events (x 10 deliveries)")
    parser.add_argument("--raw", action="store_true", help="also measure the raw ceiling")
    parser.add_argument("--valgrind", help="run the worker under cachegrind, output to this file")
    import uvloop

    uvloop.run(main(parser.parse_args()))
