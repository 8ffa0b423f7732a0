"""Webhooks benchmark: events accepted by POST /events (driven by wrk), deliveries/s against the
raw ceiling of the same HTTP client, and the latency from the 202 to the receiver on an idle
gateway.

    .venv/bin/python -m bench.webhooks
    BENCH_DURATION=3 BENCH_EVENTS=1000 .venv/bin/python -m bench.webhooks --database postgresql://...

The sink is nginx answering 204 and logging `$msec $http_webhook_id` per request, so arrival
times come from the receiver itself. Delivery throughput is measured draining a backlog
(BENCH_EVENTS events x 10 subscribers, stored before the worker starts), so the publishing
gateway does not share the two cores with the worker; the same while publishing is shown too.
Every phase is bounded in time; prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from standardwebhooks import Webhook

from bench.harness import BIN, empty_database, free_port, process, require_tools, wrk

DURATION = float(os.environ.get("BENCH_DURATION", "3"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "3000"))
EVENT_OF = {"/s": "payment", "/l": "transaction"}  # by the sink path its subscribers use
SUBSCRIBERS = 10
CONCURRENCY = 64
SECRET = "bench-secret"


@contextlib.contextmanager
def nginx_sink(tmp: Path) -> Iterator[tuple[int, Path]]:
    """nginx answering 204 to anything, logging arrival time and webhook-id of each request."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    log = tmp / "arrivals.log"
    conf = tmp / "nginx.conf"
    conf.write_text(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{ client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp}; keepalive_requests 1000000;
  log_format arrivals '$msec $http_webhook_id $uri';
  server {{ listen 127.0.0.1:{port} backlog=4096;
    location = /ready {{ access_log off; return 200 'ok'; }}
    location / {{ access_log {log} arrivals; return 204; }} }}
}}
""")
    with process([exe, "-c", str(conf), "-p", str(tmp)], ready_url=f"http://127.0.0.1:{port}/ready"):
        yield port, log


class Arrivals:
    """The sink's access log, read incrementally: (time, webhook-id, path) per request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.seen: list[tuple[float, str, str]] = []
        self.by_id: dict[str, float] = {}

    def poll(self) -> list[tuple[float, str, str]]:
        if self.path.exists():
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
            end = chunk.rfind(b"\n") + 1
            self.offset += end
            for line in chunk[:end].decode().splitlines():
                parts = line.split(" ")
                if len(parts) == 3:
                    self.seen.append((float(parts[0]), parts[1], parts[2]))
                    self.by_id.setdefault(parts[1], float(parts[0]))
        return self.seen


def arrivals(log: Path) -> list[tuple[float, str, str]]:
    return Arrivals(log).poll()


class Gateway:
    def __init__(self, workdir: Path, database: str, **extra: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICEGATE_")}
        self.env.update({
            "SERVICEGATE_DATABASE__URL": database,
            "SERVICEGATE_AUTH__SIGNING_KEY_PATH": str(workdir / "keys"),
            "SERVICEGATE_DEFINITIONS__DIR": str(workdir / "definitions"),
            "SERVICEGATE_LOGGING__LEVEL": "warning",
            "SERVICEGATE_WEBHOOKS__ALLOW_PRIVATE_NETWORKS": "true",
            "SERVICEGATE_WEBHOOKS__CONCURRENCY": str(CONCURRENCY),
            "SERVICEGATE_SERVER__WORKERS": "1",
            "SERVICEGATE_SERVER__PORT": str(self.port),
            **extra,
        })

    def cli(self, *args: str) -> str:
        return subprocess.run([str(BIN / "servicegate"), *args], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, check=True, timeout=60).stdout

    def serve(self) -> contextlib.AbstractContextManager[subprocess.Popen]:
        return process([str(BIN / "servicegate"), "serve"], env=self.env, cwd=self.workdir,
                       ready_url=f"{self.url}/readyz", log=self.workdir / f"gw-{self.port}.log")

    def worker(self) -> contextlib.AbstractContextManager[subprocess.Popen]:
        return process([str(BIN / "servicegate"), "worker"], env=self.env, cwd=self.workdir,
                       log=self.workdir / "worker.log")


def ingest_gateway(tmp: Path, database: str) -> tuple[Gateway, dict, dict]:
    """A migrated gateway with delivery workers off, a publishing client and a subscribing
    client (each as `clients create --json` prints it)."""
    ingest = Gateway(tmp, database, SERVICEGATE_WEBHOOKS__WORKERS="0")
    ingest.cli("migrate")
    pub = json.loads(ingest.cli("clients", "create", "backoffice", "--json",
                                "--scope", "events:publish"))
    sub = json.loads(ingest.cli("clients", "create", "partner", "--json", "--scope", "webhooks"))
    return ingest, pub, sub


def event_body(n: int) -> dict:
    return {"event": "payment", "data": {"paymentId": n, "debtorId": 4711, "amount": "125.50",
                                         "currency": "EUR", "reference": "INV-2026-00042",
                                         "note": "x" * 120}}


def accept_rate(url: str, key: str, workdir: Path, *, batch: int, concurrency: int) -> float:
    """Events accepted per second by POST /events for DURATION seconds, driven by wrk: a Python
    client is the bottleneck here (aiohttp measured 3.1k events/s where wrk gets 4.8-6k from the
    same gateway, seventh session)."""
    body = orjson.dumps(event_body(0) if batch == 1 else [event_body(i) for i in range(batch)])
    script = workdir / f"post-{batch}.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = [==[{body.decode()}]==]\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    result = wrk(f"{url}/events", connections=concurrency, duration=max(1, round(DURATION)),
                 headers={"X-API-Key": key}, script=script)
    if result.errors:
        raise RuntimeError(f"POST /events: {result.errors} answers other than 202")
    return result.rps * batch


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL server process on this machine (Linux /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            if text.split("(", 1)[1].split(")", 1)[0] == "postgres":
                total += cpu_seconds(int(stat.parent.name))
    return total


async def settle_cpu(pid: int, timeout: float = 20.0) -> None:
    """Wait until a freshly started process has finished starting (its CPU time stops rising)."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last < 0.02:
            return
        last = now


async def raw_ceiling(sink: int, count: int) -> tuple[float, float]:
    """The same aiohttp client sending the same signed requests, same concurrency, no gateway."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2, limit_per_host=0)
    done = 0
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                     skip_auto_headers=("User-Agent",)) as http:
        async def loop(worker: int) -> None:
            nonlocal done
            while done < count:
                n = done
                done += 1
                msg_id = f"raw_{n}"
                content = orjson.dumps({"id": msg_id, "event": "payment",
                                        "timestamp": "2026-01-01T00:00:00Z",
                                        "data": event_body(n)["data"], "secret": SECRET})
                now = datetime.now(UTC)
                headers = {"content-type": "application/json", "user-agent": "bench",
                           "webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                           "webhook-signature": Webhook(SECRET.encode()).sign(
                               msg_id, now, content.decode())}
                async with http.post(f"http://127.0.0.1:{sink}/raw{worker % SUBSCRIBERS}",
                                     data=content, headers=headers, allow_redirects=False,
                                     timeout=aiohttp.ClientTimeout(total=15)) as resp:
                    await resp.read()

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(loop(i) for i in range(CONCURRENCY)))
        return count / (time.perf_counter() - start), time.process_time() - cpu


async def publish_all(url: str, key: str, total: int, tag: str) -> None:
    headers = {"X-API-Key": key}
    async with aiohttp.ClientSession() as http:
        for start in range(0, total, 100):
            batch = [{**event_body(n), "event": EVENT_OF[tag]}
                     for n in range(start, min(start + 100, total))]
            async with http.post(f"{url}/events", json=batch, headers=headers) as resp:
                assert resp.status == 202, await resp.text()


def arrival_rate(got: list) -> float:
    """Deliveries per second between the first and the last arrival."""
    times = sorted(a[0] for a in got)
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


async def drain(log: Path, prefix: str, count: int, pid: int,
                timeout: float = 300) -> tuple[list, float]:
    """Wait for `count` arrivals; also the worker's CPU µs per delivery, counted from the
    first arrival on (so its start-up is not charged to the deliveries)."""
    seen = Arrivals(log)
    deadline = time.monotonic() + timeout
    first: tuple[float, int] | None = None
    got: list = []
    while time.monotonic() < deadline:
        got = [a for a in seen.poll() if a[2].startswith(prefix)]
        if got and first is None:
            first = (cpu_seconds(pid), len(got))
        if len(got) >= count:
            break
        await asyncio.sleep(0.05)
    if first is None or len(got) <= first[1]:
        return got, float("nan")
    return got, (cpu_seconds(pid) - first[0]) / (len(got) - first[1]) * 1e6


async def wait_arrivals(log: Path, prefix: str, count: int, timeout: float) -> list:
    seen = Arrivals(log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [a for a in seen.poll() if a[2].startswith(prefix)]
        if len(got) >= count:
            return got
        await asyncio.sleep(0.1)
    return [a for a in seen.poll() if a[2].startswith(prefix)]


async def idle_latency(url: str, key: str, log: Path, samples: int) -> list[float]:
    """ms from receiving the 202 to nginx logging the delivery, one event at a time."""
    lat = []
    seen = Arrivals(log)
    seen.poll()
    headers = {"X-API-Key": key}
    async with aiohttp.ClientSession() as http:
        for n in range(samples):
            async with http.post(f"{url}/events", headers=headers,
                                 json={"event": "debtinsert", "data": {"n": n}}) as resp:
                accepted_at = time.time()
                event_id = (await resp.json())["id"]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                seen.poll()
                if event_id in seen.by_id:
                    lat.append((seen.by_id[event_id] - accepted_at) * 1000)
                    break
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.02)
    return lat


async def main(database: str | None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sg-bench-webhooks-"))
    (tmp / "definitions").mkdir()
    database = database or f"sqlite:///{tmp}/gateway.db"
    await empty_database(database)  # a run can be repeated on the same database
    rows: list[str] = []
    with nginx_sink(tmp) as (sink, log):
        ingest, pub, sub = ingest_gateway(tmp, database)
        with ingest.serve():
            single = accept_rate(ingest.url, pub["api_key"], tmp, batch=1, concurrency=32)
            batched = accept_rate(ingest.url, pub["api_key"], tmp, batch=100, concurrency=4)
            rows.append(f"| POST /events, one event per request (32 in flight) | {single:,.0f} events/s | |")
            rows.append(f"| POST /events, batches of 100 (4 in flight) | {batched:,.0f} events/s | |")
            async with aiohttp.ClientSession() as http:
                for (path, event), i in itertools.product(EVENT_OF.items(), range(SUBSCRIBERS)):
                    async with http.post(f"{ingest.url}/webhooks", headers={"X-API-Key": sub["api_key"]},
                                         json={"events": [event], "secret": SECRET,
                                               "url": f"http://127.0.0.1:{sink}{path}{i}"}) as resp:
                        assert resp.status == 200, await resp.text()
                async with http.post(f"{ingest.url}/webhooks", headers={"X-API-Key": sub["api_key"]},
                                     json={"events": ["debtinsert"], "secret": SECRET,
                                           "url": f"http://127.0.0.1:{sink}/lat"}) as resp:
                    assert resp.status == 200
            expected = EVENTS * SUBSCRIBERS
            before, raw_cpu1 = await raw_ceiling(sink, expected)  # either side of the gateway
            # (1) drain: the events are stored first, then one worker delivers the backlog
            await publish_all(ingest.url, pub["api_key"], EVENTS, "/s")
            pg_before = postgres_cpu()
            with ingest.worker() as worker:
                got, worker_us = await drain(log, "/s", expected, worker.pid)
                pg_us = (postgres_cpu() - pg_before) / max(len(got), 1) * 1e6  # backends alive
            rate = arrival_rate(got)
            after, raw_cpu2 = await raw_ceiling(sink, expected)
            ceiling = (before + after) / 2
            raw_us = (raw_cpu1 + raw_cpu2) / 2 / expected * 1e6
            rows.append(f"| deliveries to nginx sink, {SUBSCRIBERS} subscribers, backlog of "
                        f"{expected:,} drained by one `servicegate worker` ({len(got):,} "
                        f"delivered, {CONCURRENCY} in flight) | {rate:,.0f} deliveries/s | "
                        f"{rate / ceiling:.0%} |")
            rows.append(f"| raw ceiling: same aiohttp client, same signed requests, "
                        f"{CONCURRENCY} in flight (mean of runs before and after) | "
                        f"{ceiling:,.0f} requests/s | 100% |")
            rows.append(f"| CPU per delivery (worker process) vs per raw request (client) | "
                        f"{worker_us:.0f} µs vs {raw_us:.0f} µs | {raw_us / worker_us:.0%} |")
            if database.startswith("postgresql"):
                rows.append(f"| PostgreSQL server CPU per delivery (claim, outcome, attempt log; "
                            f"worker start-up included) | {pg_us:.0f} µs | |")
            # (2) the same while the events are being published (gateway and worker share cores)
            live = EVENTS // 3
            with ingest.worker() as worker:
                await settle_cpu(worker.pid)
                await publish_all(ingest.url, pub["api_key"], live, "/l")
                got = await wait_arrivals(log, "/l", live * SUBSCRIBERS, timeout=120)
            rows.append(f"| the same while the events are being published ({live * SUBSCRIBERS:,} "
                        f"deliveries, {len(got):,} delivered) | {arrival_rate(got):,.0f} "
                        f"deliveries/s | {arrival_rate(got) / ceiling:.0%} |")
        idle = Gateway(tmp, database)  # delivery workers in the gateway process (the default)
        with idle.serve():
            await asyncio.sleep(0.5)
            lat = await idle_latency(idle.url, pub["api_key"], log, samples=100)
        if lat:
            q = statistics.quantiles(lat, n=100)
            rows.append(f"| 202 → receiver on an idle gateway, p50 / p90 / p99 ({len(lat)} events) | "
                        f"{statistics.median(lat):.1f} / {q[89]:.1f} / {q[98]:.1f} ms | |")
    backend = database.split(":", 1)[0]
    print(f"### Webhooks ({backend}, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n")
    print("| measurement | result | vs raw ceiling |\n|---|---:|---:|")
    print("\n".join(rows))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="gateway database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    require_tools("wrk", "nginx")
    try:
        import uvloop

        uvloop.run(main(args.database))
    except ImportError:
        asyncio.run(main(args.database))
