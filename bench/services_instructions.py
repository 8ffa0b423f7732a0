"""CPU instructions per request of the `/services` http path, counted by valgrind: stable
to a fraction of a percent on a busy, shared machine where timings vary by 20 % or more.

    .venv/bin/python -m bench.services_instructions               (http, minimal proxy, ping)
    BENCH_COMPARE_SRC=/path/to/main/src .venv/bin/python -m bench.services_instructions

Runs the ASGI app in process (uvloop, as `servicegate serve`) against a raw-asyncio upstream
answering a fixed 1 KB JSON reply (its own cost is tiny and the same for every target), each
target in its own process under `valgrind --tool=cachegrind`, with N and 3N requests after a
warm-up; instructions per request = the difference / 2N. The minimal proxy is
bench/definitions_apps.py; the ratio minimal/http matches the throughput ratio of
bench.definitions on an idle machine (both 62 % on main when this was written).
Needs valgrind (`apt-get install -y valgrind`).
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

N = int(os.environ.get("BENCH_REQUESTS", "500"))
BODY = b'{"data": "' + b"x" * 1000 + b'"}'
REPLY = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 28 Nov 2026 09:00:00 GMT\r\n"
         b"Content-Type: application/json\r\nContent-Length: " + str(len(BODY)).encode()
         + b"\r\nConnection: keep-alive\r\n\r\n" + BODY)
ROOT = Path(__file__).resolve().parent.parent


class _Upstream(asyncio.Protocol):
    """Answers every request head with REPLY (keep-alive)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(REPLY)  # type: ignore[attr-defined]


async def _serve(target: str, requests: int) -> None:
    import aiohttp

    from bench import definitions_apps
    from bench.harness import free_port, start_in_process
    from bench.services_inprocess import _Call

    try:  # under valgrind a second is a few requests: flush the metric tallies at the end
        from servicegate.web import metrics
        metrics.FLUSH_SECONDS = 3600  # type: ignore[attr-defined]
    except ImportError:
        pass
    port = free_port()
    server = await asyncio.get_running_loop().create_server(_Upstream, "127.0.0.1", port)
    with tempfile.TemporaryDirectory(prefix="sg-bench-instr-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "definitions").mkdir()
        (tmp / "definitions" / "bench.yaml").write_text(
            "name: bench-http\nmethods: [GET]\n"
            f'action: {{type: http, url: "http://127.0.0.1:{port}/{{{{ subpath }}}}"}}\n'
            "---\nname: bench-static\nmethods: [GET]\naction: {type: static, body: {}}\n")
        runtime, app, key = await start_in_process(tmp)
        os.environ["BENCH_UPSTREAM"] = f"http://127.0.0.1:{port}/"
        definitions_apps._session.append(aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512, limit_per_host=256)))
        call = {"http": _Call(app, "/services/bench-http", key),
                "ping": _Call(app, "/services/ping", key),
                "static": _Call(app, "/services/bench-static", key),
                "minimal": _Call(definitions_apps.proxy, "/", key)}[target]
        for _ in range(200):
            await call()
        gc.collect()
        gc.freeze()  # as the app's lifespan does
        for _ in range(requests):
            await call()
        await runtime.stop()
        await definitions_apps._session.pop().close()
    server.close()


def _instructions(target: str, requests: int, src: str | None) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if src:
        env["PYTHONPATH"] = f"{src}{os.pathsep}{ROOT}"
    out = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, "-m", "bench.services_instructions", "--serve", target, str(requests)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True).stderr
    return int(re.search(r"I\s+refs:\s+([\d,]+)", out).group(1).replace(",", ""))  # type: ignore[union-attr]


def _per_request(target: str, src: str | None = None) -> float:
    return (_instructions(target, 3 * N, src) - _instructions(target, N, src)) / (2 * N)


def main() -> None:
    compare = os.environ.get("BENCH_COMPARE_SRC")
    figures = {"minimal proxy": _per_request("minimal"), "http": _per_request("http"),
               "ping": _per_request("ping"), "static": _per_request("static")}
    if compare:
        for target in ("http", "ping", "static"):
            figures[f"{target} (compare)"] = _per_request(target, compare)
    print(f"### /services instructions per request (valgrind, {2 * N} requests counted)\n")
    print("| target | instructions/request | minimal proxy / target |")
    print("|---|---:|---:|")
    for name, count in figures.items():
        ratio = (f"{figures['minimal proxy'] / count:.1%}" if name.startswith("http") else "—")
        print(f"| {name} | {count:,.0f} | {ratio} |")
    if compare:
        print(f"\n(compare: {compare})")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        import uvloop

        uvloop.run(_serve(sys.argv[2], int(sys.argv[3])))
    else:
        main()
