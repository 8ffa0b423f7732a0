"""Benchmark harness: start servers on free ports, drive them with wrk, report ratios.

Every figure is measured in the same run as its baseline; only ratios are comparable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DURATION = int(os.environ.get("BENCH_DURATION", "10"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=1):
                return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextlib.contextmanager
def process(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            ready_url: str | None = None, log: Path | None = None) -> Iterator[subprocess.Popen]:
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        if ready_url:
            wait_http(ready_url)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def nginx(conf_body: str) -> Iterator[int]:
    """nginx with a server block `conf_body` (use {port}); yields the port."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="sg-nginx-"))
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp};
  fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  keepalive_requests 1000000;
  {conf_body.replace('{port}', str(port))}
}}
"""
    )
    with process([exe, "-c", str(conf), "-p", str(tmp)], ready_url=f"http://127.0.0.1:{port}/"):
        yield port
    shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def granian_app(target: str, cwd: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    port = free_port()
    args = [str(BIN / "granian"), "--interface", "asgi", "--loop", "uvloop", "--workers", "1",
            "--host", "127.0.0.1", "--port", str(port), "--no-ws", target]
    with process(args, cwd=cwd, env={**os.environ, **env} if env else None,
                 ready_url=f"http://127.0.0.1:{port}/"):
        yield port


@dataclass
class Gateway:
    url: str
    workdir: Path
    env: dict[str, str]

    def cli(self, *args: str) -> str:
        return subprocess.run([str(BIN / "servicegate"), *args], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, check=True, timeout=60).stdout

    def create_client(self, name: str, *scopes: str) -> dict[str, str]:
        args = ["clients", "create", name, "--json"]
        for s in scopes:
            args += ["--scope", s]
        return json.loads(self.cli(*args))


@contextlib.contextmanager
def gateway(database_url: str | None = None, definitions: dict[str, str] | None = None,
            **env_extra: str) -> Iterator[Gateway]:
    """`servicegate serve` (one worker) on a free port; `definitions` are files written first."""
    workdir = Path(tempfile.mkdtemp(prefix="sg-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICEGATE_")}
    env.update({
        "SERVICEGATE_DATABASE__URL": database_url or f"sqlite:///{workdir}/gateway.db",
        "SERVICEGATE_AUTH__SIGNING_KEY_PATH": str(workdir / "keys"),
        "SERVICEGATE_DEFINITIONS__DIR": str(workdir / "definitions"),
        "SERVICEGATE_LOGGING__LEVEL": "warning",
        "SERVICEGATE_LOGGING__ACCESS_LOG": "false",
        "SERVICEGATE_WEBHOOKS__ALLOW_PRIVATE_NETWORKS": "true",
        "SERVICEGATE_SERVER__WORKERS": "1",
        "SERVICEGATE_SERVER__PORT": str(port),
    })
    env.update(env_extra)
    (workdir / "definitions").mkdir()
    for filename, text in (definitions or {}).items():
        (workdir / "definitions" / filename).write_text(text)
    gw = Gateway(f"http://127.0.0.1:{port}", workdir, env)
    gw.cli("migrate")
    with process([str(BIN / "servicegate"), "serve"], env=env, cwd=workdir,
                 ready_url=f"{gw.url}/healthz", log=workdir / "gateway.log"):
        yield gw
    shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def wrk(url: str, *, connections: int, duration: int = DURATION,
        headers: dict[str, str] | None = None, script: Path | None = None) -> WrkResult:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    if script:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True,
                         timeout=duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # anchored: the thread stats line ends in percentages too ("... 75.50%")
    p50 = _ms(re.search(r"^\s*50(?:\.000)?%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s*99(?:\.000)?%\s+(\S+)", out, re.M).group(1))
    errors = 0
    for m in re.finditer(r"(?:Non-2xx or 3xx responses|Socket errors:.*?timeout)\s*:?\s*(\d+)", out):
        errors += int(m.group(1))
    return WrkResult(rps, p50, p99, errors)


def measure(url: str, headers: dict[str, str] | None = None,
            script: Path | None = None) -> tuple[WrkResult, WrkResult]:
    """Throughput at 64 connections, latency at 8 (as in shared/ANCHORS.md)."""
    wrk(url, connections=8, duration=2, headers=headers, script=script)  # warm-up
    return (wrk(url, connections=64, headers=headers, script=script),
            wrk(url, connections=8, headers=headers, script=script))


def row(name: str, tput: WrkResult, lat: WrkResult, baseline: float | None) -> str:
    ratio = f"{tput.rps / baseline:.0%}" if baseline else "—"
    return (f"| {name} | {tput.rps:,.0f} | {ratio} | {lat.p50_ms:.3f} | {lat.p99_ms:.3f} | "
            f"{tput.errors + lat.errors} |")


TABLE_HEAD = ("| target | req/s @64 | vs baseline | p50 ms @8 | p99 ms @8 | non-2xx |\n"
              "|---|---:|---:|---:|---:|---:|")


def require_tools(*names: str) -> None:
    missing = [n for n in names if not (shutil.which(n) or Path(f"/usr/sbin/{n}").exists())]
    if missing:
        sys.exit(f"missing tools: {', '.join(missing)} (run: apt-get install -y wrk nginx-light)")


async def start_in_process(tmp: Path, database_url: str | None = None,
                           **sections: Any) -> tuple[Any, Any, str]:
    """A migrated gateway app in this process (no server): `(runtime, app, api_key)` of a
    client holding `services`. Definitions are read from `tmp/definitions`; `sections` add
    settings (e.g. `jobs={"workers": 0}`). Imported here, late, so a benchmark may point
    `sys.path` at another checkout first."""
    from servicegate.app import create_app
    from servicegate.config import Settings
    from servicegate.runtime import Runtime
    from servicegate.storage.engine import create_engine
    from servicegate.storage.migrate import upgrade

    settings = Settings(
        database={"url": database_url or f"sqlite:///{tmp / 'gateway.db'}"},
        auth={"signing_key_path": str(tmp / "keys")},
        definitions={"dir": str(tmp / "definitions"), "watch": False},
        logging={"level": "warning", "access_log": False},
        **sections,
    )
    engine = create_engine(settings.database.url, pool_size=settings.database.pool_size)
    await upgrade(engine)
    runtime = await Runtime.start(settings, engine=engine)
    app = create_app(settings, runtime=runtime)
    app.state.runtime = runtime
    key = (await runtime.clients.create("bench", ["services"])).api_key
    return runtime, app, key


async def measure_calls(run: Any, calls: dict[str, Any], *, warmup: int, requests: int,
                        profile: str | None = None, only: str | None = None,
                        ) -> dict[str, Any] | None:
    """In-process figures: `await run(n, call)` for each call, best of 4 runs of
    `requests // 4` after a warm-up; with `profile`, print a cProfile of that call instead
    (and return None)."""
    import cProfile
    import gc
    import pstats

    for call in calls.values():
        await run(warmup, call)  # caches, pools, metrics children
    gc.collect()
    gc.freeze()  # as the app's lifespan does after start-up
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await run(requests, calls[profile])
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        return None
    return {name: min([await run(requests // 4, call) for _ in range(4)])
            for name, call in calls.items() if only in (None, name)}


async def empty_database(database_url: str) -> None:
    """A PostgreSQL database given to a benchmark: migrated, every table emptied, so each run
    starts from nothing and can be repeated. (A SQLite database is a fresh file per run.)"""
    if not database_url.startswith("postgres"):
        return
    from sqlalchemy.exc import DBAPIError
    from tests.support.databases import truncate_all

    from servicegate.storage.engine import create_engine
    from servicegate.storage.migrate import upgrade

    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        await truncate_all(engine)
        # Start from a checkpoint: the previous run's dirty pages
        # and WAL are flushed now, not by a checkpoint the server requests in the middle of
        # this run's measurement. Needs a superuser or pg_checkpoint; skipped without.
        async with engine.connect() as conn:
            try:
                await conn.exec_driver_sql("CHECKPOINT")
            except DBAPIError as exc:
                print(f"(no CHECKPOINT before the run: {exc.orig})", file=sys.stderr)
    finally:
        await engine.dispose()


def empty_tables(database_url: str) -> None:
    """`empty_database` from synchronous code."""
    asyncio.run(empty_database(database_url))
