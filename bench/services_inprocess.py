"""In-process CPU cost of the `/services/{name}` hot path, in µs per request (no server, no wrk).

    .venv/bin/python -m bench.services_inprocess            (BENCH_REQUESTS=20000 per target)
    .venv/bin/python -m bench.services_inprocess --profile static   (cProfile, top 35)

Calls the ASGI app directly in a loop (the same app `servicegate serve` runs) for the
authenticated `/services/ping` (baseline), a `static` definition and an `http` definition
forwarding to an aiohttp upstream on 127.0.0.1, and the minimal proxy of
bench/definitions_apps.py (bare ASGI + one aiohttp session) forwarding to the same upstream
(in the same event loop, so both include the upstream's own cost: compare `http` with the
minimal proxy, `static` with ping). Compare only figures from the same run.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench import definitions_apps
from bench.harness import free_port, measure_calls, start_in_process

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "20000"))
PAYLOAD = b'{"data": "' + b"x" * 1000 + b'"}'


async def _upstream() -> tuple[web.AppRunner, int]:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(body=PAYLOAD, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


class _Call:
    """One reusable ASGI request: scope template, receive and a send that checks the status."""

    def __init__(self, app: Any, path: str, key: str) -> None:
        self.app = app
        self.template = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"),
                        (b"accept", b"*/*"), (b"x-api-key", key.encode())],
        }
        self.status = 0

    async def receive(self) -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]

    async def __call__(self) -> None:
        scope = dict(self.template)
        await self.app(scope, self.receive, self.send)
        if self.status != 200:
            raise RuntimeError(f"{scope['path']} answered {self.status}")


async def _run(n: int, call: _Call) -> float:
    started = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - started) / n * 1e6


async def main(profile: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="sg-bench-inproc-") as tmpdir:
        tmp = Path(tmpdir)
        runner, port = await _upstream()
        (tmp / "definitions").mkdir()
        (tmp / "definitions" / "bench.yaml").write_text(f"""\
name: bench-static
methods: [GET]
action: {{type: static, body: {{}}}}
---
name: bench-http
methods: [GET]
action: {{type: http, url: "http://127.0.0.1:{port}/{{{{ subpath }}}}"}}
""")
        runtime, app, key = await start_in_process(tmp)
        calls = {name: _Call(app, path, key) for name, path in (
            ("ping", "/services/ping"), ("static", "/services/bench-static"),
            ("http", "/services/bench-http"))}
        os.environ["BENCH_UPSTREAM"] = f"http://127.0.0.1:{port}/"
        definitions_apps._session.append(aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512, limit_per_host=256)))
        calls["minimal proxy"] = _Call(definitions_apps.proxy, "/", key)
        try:
            figures = await measure_calls(_run, calls, warmup=200, requests=REQUESTS,
                                          profile=profile)
            if figures is None:
                return
        finally:
            await runtime.stop()
            await definitions_apps._session.pop().close()
            await runner.cleanup()
    print(f"### /services hot path in-process ({REQUESTS} requests per target, best of 4)\n")
    print("| target | µs/request | added |")
    print("|---|---:|---:|")
    for name, us in figures.items():
        base = "minimal proxy" if name == "http" else "ping"
        added = f"{us - figures[base]:+.1f} over {base}" if name in ("static", "http") else "—"
        print(f"| {name} | {us:.1f} | {added} |")


if __name__ == "__main__":
    target = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--profile" else None
    asyncio.run(main(target))
