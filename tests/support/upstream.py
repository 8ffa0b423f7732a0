"""A real HTTP upstream on a free 127.0.0.1 port that records what it received."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from tests.support.processes import free_port


@dataclass
class Received:
    method: str
    path: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: CIMultiDict[str]
    body: bytes
    raw_query: str = ""


@dataclass
class Upstream:
    port: int
    received: list[Received] = field(default_factory=list)
    flaky_failures: int = 0
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _record(self, request: web.Request) -> Received:
        raw_path, _, raw_query = request.raw_path.partition("?")
        entry = Received(request.method, request.path, raw_path,
                         list(request.query.items()), CIMultiDict(request.headers),
                         await request.read(), raw_query)
        self.received.append(entry)
        return entry

    async def echo(self, request: web.Request) -> web.StreamResponse:
        entry = await self._record(request)
        return web.json_response(
            {"method": entry.method, "path": entry.path, "query": entry.query,
             "headers": dict(entry.headers), "body": entry.body.decode(errors="replace")},
            headers={"X-Upstream": "yes"},
        )

    async def slow(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        await asyncio.sleep(float(request.query.get("s", "2")))
        return web.json_response({"slow": True})

    async def fail(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return web.json_response({"error": "boom"}, status=500)

    async def text(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return web.Response(text="<ok/>", content_type="application/xml")

    async def close(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        assert request.transport is not None
        request.transport.close()
        return web.Response()  # never delivered

    async def flaky(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if self.flaky_failures > 0:
            self.flaky_failures -= 1
            return web.json_response({"try": "again"}, status=503)
        return web.json_response({"ok": True})

    async def items(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return web.json_response({"items": [{"id": i, "name": f"n{i}", "secret": "x"}
                                            for i in range(3)], "total": 3})

    async def cookie(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        resp = web.json_response({"cookie": "set"})
        resp.set_cookie("session", "of-one-caller", path="/")
        return resp

    async def big(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        size = int(request.query.get("size", "300000"))
        body = bytes(range(256)) * (size // 256 + 1)
        if request.query.get("chunked"):
            resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for start in range(0, size, 8192):
                await resp.write(body[start:min(start + 8192, size)])
            await resp.write_eof()
            return resp
        return web.Response(body=body[:size], content_type="application/octet-stream")

    async def start(self) -> Upstream:
        app = web.Application()
        app.router.add_route("*", "/slow", self.slow)
        app.router.add_route("*", "/fail", self.fail)
        app.router.add_route("*", "/text", self.text)
        app.router.add_route("*", "/close", self.close)
        app.router.add_route("*", "/flaky", self.flaky)
        app.router.add_route("*", "/items", self.items)
        app.router.add_route("*", "/big", self.big)
        app.router.add_route("*", "/cookie", self.cookie)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def start_upstream() -> Upstream:
    return await Upstream(free_port()).start()


def last(upstream: Upstream) -> Received:
    assert upstream.received, "the upstream received nothing"
    return upstream.received[-1]


def as_dict(entry: Received) -> dict[str, Any]:
    return entry.__dict__
