"""The Python baseline of bench/definitions.py: a minimal aiohttp proxy (granian).

    BENCH_UPSTREAM=http://127.0.0.1:PORT/ granian --interface asgi bench.definitions_apps:proxy
"""

from __future__ import annotations

import os

import aiohttp


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
