"""A real webhook receiver: aiohttp.web on a free 127.0.0.1 port that records every request
and answers per path as planned (statuses in turn, Retry-After, hanging past a timeout)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    default_status: int = 204
    requests: list[Received] = field(default_factory=list)
    plans: dict[str, deque[tuple[int, dict[str, str]]]] = field(
        default_factory=lambda: defaultdict(deque))
    hang: set[str] = field(default_factory=set)
    bodies: dict[str, bytes] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    concurrent: int = 0
    max_concurrent_per_id: dict[str, int] = field(default_factory=dict)
    _open_ids: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(self, path: str, *statuses: int, headers: dict[str, str] | None = None) -> None:
        for status in statuses:
            self.plans[path].append((status, headers or {}))

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        wid = request.headers.get("webhook-id", "")
        self._open_ids[wid] += 1
        self.max_concurrent_per_id[wid] = max(self.max_concurrent_per_id.get(wid, 0),
                                              self._open_ids[wid])
        try:
            self.requests.append(Received(request.path, request.method, dict(request.headers),
                                          body, time.monotonic()))
            async with self._arrived:
                self._arrived.notify_all()
            if request.path in self.hang:
                await asyncio.sleep(3600)
            planned = self.plans.get(request.path)
            status, headers = planned.popleft() if planned else (self.default_status, {})
            if request.path in self.bodies:
                return web.Response(status=status, headers=headers, body=self.bodies[request.path])
            return web.Response(status=status, headers=headers,
                                text="" if status == 204 else f"answer {status}")
        finally:
            self._open_ids[wid] -= 1

    async def start(self) -> Receiver:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, count: int, path: str | None = None, timeout: float = 15.0) -> list[Received]:
        def seen() -> list[Received]:
            return self.requests if path is None else self.at(path)

        async def until() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(seen()) >= count)

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"expected {count} requests at {path}, got {len(seen())}") from None
        return seen()


@dataclass
class Listener:
    """A plain TCP server on a free 127.0.0.1 port that records every connection it accepts
    and answers any request with `200 loopback-secret`: the service an SSRF would reach.

    `settled()` proves a refusal without waiting for time to pass: it connects once itself and
    returns once that connection is recorded; connections are accepted in order, so any made
    by the gateway before it are recorded too."""

    body: bytes = b"loopback-secret"
    connections: list[tuple[str, int]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _accepted: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str = "/x") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer.get_extra_info("peername")[:2])
        async with self._accepted:
            self._accepted.notify_all()
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(self.body), self.body))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self) -> Listener:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def settled(self) -> list[tuple[str, int]]:
        """The connections made before this call (the listener's own probe left out)."""
        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        probe = writer.get_extra_info("sockname")[:2]
        async with self._accepted:
            await asyncio.wait_for(self._accepted.wait_for(lambda: probe in self.connections), 10)
        writer.close()
        return [c for c in self.connections if c != probe]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
