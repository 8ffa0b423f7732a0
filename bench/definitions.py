"""Service definitions under load: `static` vs a bare ASGI app, `http` vs nginx and a minimal proxy.

    .venv/bin/python -m bench.definitions            (BENCH_DURATION=5 seconds per point)

Everything runs on this machine in one go, one worker per server, wrk sharing the cores:
1 KB JSON upstream (nginx) called directly, nginx `proxy_pass` with keep-alive, a minimal
granian + aiohttp proxy (the Python baseline), the gateway's `http` definition; and a bare
ASGI app (granian) vs the gateway's authenticated `/services/ping` and `static` definition.
Throughput at 64 connections, p50/p99 at 8 connections. Compare only ratios within a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DURATION = int(os.environ.get("BENCH_DURATION", "5"))
PAYLOAD = json.dumps({"items": [{"id": i, "name": f"customer {i:03d}", "city": "Lund"}
                                for i in range(21)]})[:1000]
PAYLOAD = json.dumps({"data": PAYLOAD})  # about 1 KB of JSON


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, headers: dict[str, str] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                        timeout=1):
                return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextlib.contextmanager
def process(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            ready: str | None = None, headers: dict[str, str] | None = None,
            log: Path | None = None) -> Iterator[subprocess.Popen]:
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        if ready:
            wait_http(ready, headers)
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
def nginx(tmp: Path) -> Iterator[tuple[int, int]]:
    """(upstream port answering 1 KB JSON, proxy_pass port with a keep-alive pool)."""
    upstream, proxy = free_port(), free_port()
    body = PAYLOAD.replace("'", "\\'")
    conf = tmp / "nginx.conf"
    conf.write_text(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid;
error_log {tmp}/error.log; events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp};
  fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  keepalive_requests 1000000;
  upstream json1k {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{ listen 127.0.0.1:{upstream};
    location / {{ default_type application/json; return 200 '{body}'; }} }}
  server {{ listen 127.0.0.1:{proxy};
    location / {{ proxy_pass http://json1k; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }} }}
}}
""")
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    with process([exe, "-c", str(conf), "-p", str(tmp)], ready=f"http://127.0.0.1:{proxy}/"):
        yield upstream, proxy


@contextlib.contextmanager
def granian(target: str, env: dict[str, str] | None = None) -> Iterator[int]:
    port = free_port()
    args = [str(BIN / "granian"), "--interface", "asgi", "--loop", "uvloop", "--workers", "1",
            "--host", "127.0.0.1", "--port", str(port), "--no-ws", target]
    with process(args, cwd=ROOT, env={**os.environ, **(env or {})},
                 ready=f"http://127.0.0.1:{port}/"):
        yield port


@contextlib.contextmanager
def gateway(tmp: Path, upstream_port: int) -> Iterator[tuple[str, dict[str, str]]]:
    definitions = tmp / "definitions"
    definitions.mkdir()
    (definitions / "bench.yaml").write_text(f"""\
name: bench-static
methods: [GET]
action: {{type: static, body: {{}}}}
---
name: bench-http
methods: [GET]
action: {{type: http, url: "http://127.0.0.1:{upstream_port}/{{{{ subpath }}}}"}}
""")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICEGATE_")}
    env.update({
        "SERVICEGATE_DATABASE__URL": f"sqlite:///{tmp}/gateway.db",
        "SERVICEGATE_AUTH__SIGNING_KEY_PATH": str(tmp / "keys"),
        "SERVICEGATE_DEFINITIONS__DIR": str(definitions),
        "SERVICEGATE_LOGGING__LEVEL": "warning",
        "SERVICEGATE_SERVER__PORT": str(port),
        "SERVICEGATE_SERVER__WORKERS": "1",
    })
    exe = str(BIN / "servicegate")
    subprocess.run([exe, "migrate"], env=env, cwd=tmp, check=True, capture_output=True)
    created = json.loads(subprocess.run(
        [exe, "clients", "create", "bench", "--scope", "services", "--json"], env=env, cwd=tmp,
        check=True, capture_output=True, text=True).stdout)
    headers = {"X-API-Key": created["api_key"]}
    url = f"http://127.0.0.1:{port}"
    with process([exe, "serve"], env=env, cwd=tmp, ready=f"{url}/services/bench-static",
                 headers=headers, log=tmp / "gateway.log"):
        yield url, headers


_LAT = re.compile(r"^\s*(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, headers: dict[str, str], connections: int) -> dict[str, float]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{DURATION}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True,
                         timeout=DURATION + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: float(v) * _UNITS[u] for p, v, u in _LAT.findall(out)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    return {"rps": rps, "p50": lat.get("50", 0.0), "p99": lat.get("99", 0.0), "errors": errors}


def measure(url: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    headers = headers or {}
    wait_http(url, headers)
    wrk(url, headers, 8) if DURATION >= 5 else None  # warm-up of pools and caches
    tput = wrk(url, headers, 64)
    lat = wrk(url, headers, 8)
    return {"rps": tput["rps"], "p50": lat["p50"], "p99": lat["p99"],
            "errors": tput["errors"] + lat["errors"]}


def main() -> None:
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is missing: apt-get install -y wrk nginx-light")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sg-bench-defs-") as tmpdir:
        tmp = Path(tmpdir)
        with nginx(tmp) as (upstream, proxy):
            up = f"http://127.0.0.1:{upstream}/"
            results["1 KB upstream (nginx) called directly"] = measure(up)
            results["nginx proxy_pass, keep-alive pool"] = measure(f"http://127.0.0.1:{proxy}/")
            with granian("bench.definitions_apps:proxy", {"BENCH_UPSTREAM": up}) as port:
                results["minimal proxy: bare ASGI + aiohttp (baseline)"] = measure(
                    f"http://127.0.0.1:{port}/")
            with granian("bench.definitions_apps:bare") as port:
                results["bare ASGI app `{}` (baseline)"] = measure(f"http://127.0.0.1:{port}/")
            with gateway(tmp, upstream) as (url, key):
                results["ServiceGate /services/ping"] = measure(f"{url}/services/ping", key)
                results["ServiceGate `static` definition"] = measure(
                    f"{url}/services/bench-static", key)
                results["ServiceGate `http` definition"] = measure(
                    f"{url}/services/bench-http", key)

    print(f"### Service definitions ({platform.node()}, wrk -t1, {DURATION}s per point, "
          "one worker per server)\n")
    print("| target | req/s @64 | p50 ms @8 | p99 ms @8 | non-2xx |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['rps']:,.0f} | {r['p50']:.3f} | {r['p99']:.3f} | {r['errors']} |")
    bare = results["bare ASGI app `{}` (baseline)"]
    static = results["ServiceGate `static` definition"]
    minimal = results["minimal proxy: bare ASGI + aiohttp (baseline)"]
    http = results["ServiceGate `http` definition"]
    direct = results["1 KB upstream (nginx) called directly"]
    print(f"\n- `static` = {static['rps'] / bare['rps']:.0%} of the bare ASGI app "
          "(target >= 50 %)")
    print(f"- `http` = {http['rps'] / minimal['rps']:.0%} of the minimal proxy's throughput "
          "(target >= 80 %)")
    print(f"- added p50 latency of `http` over the upstream called directly: "
          f"{http['p50'] - direct['p50']:.3f} ms (target < 1.5 ms); over the minimal proxy: "
          f"{http['p50'] - minimal['p50']:.3f} ms")


if __name__ == "__main__":
    main()
