"""Baselines for bench/definitions.py: a bare ASGI app and a minimal aiohttp proxy (granian).

    granian --interface asgi bench.definitions_apps:bare
    BENCH_UPSTREAM=http://127.0.0.1:PORT/ granian --interface asgi bench.definitions_apps:proxy
"""

from __future__ import annotations

import os

import aiohttp

BODY = b"{}"
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]


async def _lifespan(receive, send, on_start=None, on_stop=None):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if on_start:
                await on_start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if on_stop:
                await on_stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def bare(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


_session: list[aiohttp.ClientSession] = []


async def proxy(scope, receive, send):
    """Forward every request to BENCH_UPSTREAM with one shared aiohttp session."""
    if scope["type"] == "lifespan":
        async def start():
            _session.append(aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, limit_per_host=256)))

        async def stop():
            await _session[0].close()

        await _lifespan(receive, send, start, stop)
        return
    upstream = os.environ["BENCH_UPSTREAM"]
    async with _session[0].get(upstream) as resp:
        body = await resp.read()
        ctype = resp.headers.get("Content-Type", "application/json").encode()
    await send({"type": "http.response.start", "status": resp.status,
                "headers": [(b"content-type", ctype),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
