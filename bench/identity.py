"""Identity search benchmark: N generated identities in SQLite and PostgreSQL.

For each backend: import rate of `servicegate identities import`, then p50/p99 over HTTP
(`servicegate serve`, one worker, sequential keep-alive requests) for four queries, each
against the same SQL (the count and the page statements the gateway runs) executed directly
with the raw driver (sqlite3 / asyncpg) in the same run.

    .venv/bin/python -m bench.identity                 # 1,000,000 identities (the issue's size)
    .venv/bin/python -m bench.identity --size 50000    # quicker
    BENCH_IDENTITY_SIZE=200000 make bench

Prints a markdown table. Runtime is bounded: --requests per query and --max-seconds per loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from servicegate.identity import generator
from servicegate.identity.odata import DEFAULT_LIMITS
from servicegate.identity.ordering import DEFAULT_TOP
from servicegate.identity.properties import identity_properties
from servicegate.identity.search import IdentitySearch, total_from_page
from servicegate.storage.schema import identities

BIN = Path(sys.executable).parent
SERVICEGATE = str(BIN / "servicegate")
PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SEED = 42

QUERIES = {
    "a": ("idnumber eq '…'", None),
    "b": ("startswith(fullname,'Ander')", "fullname"),
    "c": ("addresses/any(a: a/city eq 'Lund') and juridicalType eq 1", "fullname"),
    "d": ("contains(fullname,'son')", None),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(workdir: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICEGATE_")}
    env.update({
        "SERVICEGATE_DATABASE__URL": url,
        "SERVICEGATE_AUTH__SIGNING_KEY_PATH": str(workdir / "keys"),
        "SERVICEGATE_DEFINITIONS__DIR": str(workdir / "definitions"),
        "SERVICEGATE_LOGGING__LEVEL": "warning",
        "SERVICEGATE_METRICS__ENABLED": "false",
    })
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 3600) -> str:
    done = subprocess.run([SERVICEGATE, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"servicegate {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def filters(size: int, requests: int) -> dict[str, list[str]]:
    rng = random.Random(7)
    ids = [generator.identity(SEED, rng.randrange(size))["idnumber"] for _ in range(requests)]
    return {
        "a": [f"idnumber eq '{i}'" for i in ids],
        "b": [QUERIES["b"][0]] * requests,
        "c": [QUERIES["c"][0]] * requests,
        "d": [QUERIES["d"][0]] * requests,
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Direct:
    """The same count + page statements, straight through the raw driver (no gateway)."""

    def __init__(self, backend: str, target: str) -> None:
        self.backend, self.target = backend, target
        self.sqlite: sqlite3.Connection | None = None
        self.pg: asyncpg.Connection | None = None

    async def open(self) -> None:
        if self.backend == "sqlite":
            self.sqlite = sqlite3.connect(self.target)
            self.sqlite.execute("PRAGMA journal_mode=WAL")
        else:
            self.pg = await asyncpg.connect(self.target)

    async def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.pg is not None:
            await self.pg.close()

    def prepare(self, flt: str, orderby: str | None) -> list[tuple[str, list[Any]]]:
        """Compiled outside the timed part: the baseline is the database work alone."""
        if self.backend == "sqlite":
            return compiled(flt, orderby, sqlite_dialect.pysqlite.dialect(paramstyle="qmark"))
        return compiled(flt, orderby, postgresql.asyncpg.dialect(paramstyle="numeric_dollar"))

    async def run(self, statements: list[tuple[str, list[Any]]]) -> None:
        # as the gateway: the page, then the count only when the page cannot tell the total
        (count_sql, count_args), (page_sql, page_args) = statements
        if self.sqlite is not None:
            rows = [r[0].encode() for r in self.sqlite.execute(page_sql, page_args).fetchall()]
            if total_from_page(len(rows), 0, DEFAULT_TOP) is None:
                self.sqlite.execute(count_sql, count_args).fetchone()
            return
        assert self.pg is not None
        rows = [r[0].encode() for r in await self.pg.fetch(page_sql, *page_args)]
        if total_from_page(len(rows), 0, DEFAULT_TOP) is None:
            await self.pg.fetchval(count_sql, *count_args)


async def measure(url: str, key: str, direct: Direct, flts: list[str], orderby: str | None,
                  max_seconds: float) -> tuple[list[float], list[float]]:
    """Alternate one HTTP request and one direct execution, so both see the same machine
    load (the two cores are shared); the first five of each are warm-up."""
    via_http: list[float] = []
    via_sql: list[float] = []
    timeout = aiohttp.ClientTimeout(total=60)
    params_base = {"$orderby": orderby} if orderby else {}
    async with aiohttp.ClientSession(timeout=timeout, headers={"X-API-Key": key}) as http:
        for i, flt in enumerate([*flts[:5], *flts]):
            t0 = time.perf_counter()
            async with http.get(url + "/services/identity",
                                params={"$filter": flt, **params_base}) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {await resp.text()}")
            statements = direct.prepare(flt, orderby)
            t1 = time.perf_counter()
            await direct.run(statements)
            t2 = time.perf_counter()
            if i >= 5:
                via_http.append(t1 - t0)
                via_sql.append(t2 - t1)
            if sum(via_http) + sum(via_sql) > max_seconds:
                break
    return via_http, via_sql


def compiled(flt: str, orderby: str | None, dialect: Any) -> list[tuple[str, list[Any]]]:
    """The gateway's count and page statements for this query, as driver SQL + parameters."""
    search = IdentitySearch.__new__(IdentitySearch)
    search.properties = identity_properties()
    search.dialect = "sqlite" if dialect.name == "sqlite" else "postgresql"
    search.limits = DEFAULT_LIMITS
    search.columns = [identities.c.doc]
    query = search.prepare(flt, orderby, None, None)
    out = []
    for stmt in search.statements(query):
        c = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        params = c.construct_params()
        out.append((str(c), [params[name] for name in (c.positiontup or [])]))
    return out


@contextlib.contextmanager
def gateway(env: dict[str, str], workdir: Path):
    port = free_port()
    log = open(workdir / f"gateway-{port}.log", "ab")
    proc = subprocess.Popen([SERVICEGATE, "serve", "--port", str(port), "--workers", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _measure(backend: str, target: Any, base: str, key: str, flts: list[str],
                   orderby: str | None, max_seconds: float) -> tuple[list[float], list[float]]:
    direct = Direct(backend, str(target))
    await direct.open()
    try:
        return await measure(base, key, direct, flts, orderby, max_seconds)
    finally:
        await direct.close()


def run_backend(backend: str, data: Path, workdir: Path, size: int, requests: int,
                max_seconds: float) -> tuple[tuple[float, float, float], list[dict[str, Any]]]:
    db = workdir / "identity.db"
    if backend == "sqlite":
        url = f"sqlite:///{db}"
    else:
        name = f"sg_bench_identity_{secrets.token_hex(4)}"
        asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    env = env_for(workdir, url)
    try:
        cli(env, "migrate")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = cli(env, "identities", "import", str(data))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_us = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) \
            / size * 1e6
        m = re.search(r"imported (\d+) identities in ([\d.]+)s", out)
        assert m, out
        rate = int(m.group(1)) / float(m.group(2))
        load = os.getloadavg()[0]
        key = re.search(r'"api_key": "([^"]+)"', cli(env, "clients", "create", "bench", "--scope",
                                                      "identity:read", "--json")).group(1)
        rows = []
        flts = filters(size, requests)
        with gateway(env, workdir) as base:
            for q, (_, orderby) in QUERIES.items():
                http, direct = asyncio.run(_measure(backend, db if backend == "sqlite" else url,
                                                    base, key, flts[q], orderby, max_seconds))
                rows.append({"backend": backend, "query": q, "n": len(http),
                             "http50": pct(http, .5) * 1e3, "http99": pct(http, .99) * 1e3,
                             "sql50": pct(direct, .5) * 1e3, "sql99": pct(direct, .99) * 1e3})
        return (rate, cpu_us, load), rows
    finally:
        if backend == "postgres":
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))


def verdict(row: dict[str, Any]) -> str:
    h, s = row["http50"], row["sql50"]
    if row["query"] in ("a", "b"):
        ok = h < 10 and h <= 2 * s + 2
        return ("ok" if ok else "MISS") + " (<10 ms, ≤2xSQL+2 ms)"
    return ("ok" if h <= 1.5 * s else "MISS") + " (≤1.5xSQL)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int,
                        default=int(os.environ.get("BENCH_IDENTITY_SIZE", "1000000")))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="stop a measurement loop after this much summed latency")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sg-bench-identity-"))
    try:
        data = workdir / "identities.jsonl"
        t0 = time.perf_counter()
        cli(env_for(workdir, f"sqlite:///{workdir / 'unused.db'}"), "identities", "generate",
            str(args.size), "--seed", str(SEED), "--out", str(data))
        generated = time.perf_counter() - t0
        results = []
        rates = {}
        for backend in args.backends.split(","):
            rate, rows = run_backend(backend.strip(), data, workdir, args.size, args.requests,
                                     args.max_seconds)
            rates[backend] = rate
            results += rows
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"## Identity search — {args.size:,} identities\n")
    print(f"Generated the JSON Lines file in {generated:.1f}s. Queries: "
          + "; ".join(f"({q}) `{f}`" + (f" `$orderby={o}`" if o else "")
                      for q, (f, o) in QUERIES.items()) + ".\n")
    print("| backend | query | requests | HTTP p50 ms | HTTP p99 ms | direct SQL p50 ms "
          "| direct SQL p99 ms | HTTP/SQL p50 | target |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(f"| {r['backend']} | ({r['query']}) | {r['n']} | {r['http50']:.2f} | "
              f"{r['http99']:.2f} | {r['sql50']:.2f} | {r['sql99']:.2f} | "
              f"{r['http50'] / r['sql50']:.2f}x | {verdict(r)} |")
    print("\n| backend | import identities/s (CLI, JSON Lines, incl. ANALYZE) "
          "| importer CPU µs/identity | load average (2 cores) | target |")
    print("|---|---:|---:|---:|---|")
    for backend, (rate, cpu_us, load) in rates.items():
        print(f"| {backend} | {rate:,.0f} | {cpu_us:.0f} | {load:.1f} | "
              f"{'ok' if rate >= 20000 else 'MISS'} (≥ 20,000/s) |")


if __name__ == "__main__":
    main()
