"""The composition root: every service a gateway process runs, built once from the settings.

The HTTP layer reads it from `app.state.runtime`; actions see it only as `ActionServices`
(HTTP client, named databases, event publisher), workers get their parts as arguments.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate import __version__
from servicegate.auth.authenticator import Authenticator
from servicegate.auth.clients import ClientStore
from servicegate.auth.external import ExternalIssuers
from servicegate.auth.keyset import KeySet
from servicegate.auth.logins import LoginGuard
from servicegate.auth.tokens import TokenIssuer
from servicegate.config import Settings
from servicegate.definitions.registry import DefinitionRegistry, ReloadReport
from servicegate.egress import GuardedResolver
from servicegate.identity.service import IdentityService
from servicegate.jobs.service import JobService
from servicegate.secretbox import SecretBox
from servicegate.storage.databases import NamedDatabases
from servicegate.storage.engine import create_engine
from servicegate.webhooks.publisher import EventPublisher
from servicegate.webhooks.service import WebhookService

log = structlog.get_logger("servicegate.runtime")
USER_AGENT = f"ServiceGate/{__version__}"
YOUNG_COLLECTION_EVERY = 20_000  # allocations between young collections (CPython: 700)


def settle_heap() -> tuple[int, ...]:
    """Tune the garbage collector for serving; returns the thresholds it replaced.

    Requests in flight hold many objects (a proxied call: the request, the upstream's
    answer, their headers), which each collection walks again while they live; objects made
    at start-up (settings, compiled definitions, modules) live as long as the process and
    are frozen out of every collection. Measured in bench/RESULTS.md's decision log."""
    gc.collect()
    gc.freeze()
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], YOUNG_COLLECTION_EVERY), *previous[1:])
    return previous


def outbound_session(resolver: Any = None) -> aiohttp.ClientSession:
    """The process-wide pooled HTTP client for upstreams, webhooks and JWKS.

    Shared by every caller, so it keeps no cookies: a jar would replay one caller's upstream
    session cookie on the next caller's request (and costs a lookup per request). Every
    request carries `User-Agent: ServiceGate/<version>` (a caller's own header replaces it):
    a session-wide default costs nothing per request, where `skip_auto_headers` made aiohttp
    copy each request's headers.
    """
    connector = aiohttp.TCPConnector(limit=512, limit_per_host=256, ttl_dns_cache=60,
                                     enable_cleanup_closed=True, resolver=resolver)
    return aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                 cookie_jar=aiohttp.DummyCookieJar(),
                                 headers={"User-Agent": USER_AGENT})


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    clients: ClientStore
    keyset: KeySet
    issuer: TokenIssuer
    external: ExternalIssuers
    authenticator: Authenticator
    http: aiohttp.ClientSession
    definitions: DefinitionRegistry
    databases: NamedDatabases
    webhooks: WebhookService
    identity: IdentityService
    jobs: JobService
    logins: LoginGuard
    workers: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    _definitions_seen: str = ""
    _public_http: aiohttp.ClientSession | None = None

    @property
    def public_http(self) -> aiohttp.ClientSession:
        """The client for upstreams whose host a template chooses: a pool of its own (no
        connection opened to an operator's internal upstream is reused) whose resolver refuses
        non-public addresses. Made on first use."""
        if self._public_http is None or self._public_http.closed:
            self._public_http = outbound_session(resolver=GuardedResolver())
        return self._public_http

    @property
    def events(self) -> EventPublisher:
        """`await runtime.events.publish(event, data, owner=...)`: the one way to raise events."""
        return self.webhooks.publisher

    @classmethod
    async def start(cls, settings: Settings, engine: AsyncEngine | None = None) -> Runtime:
        engine = engine or create_engine(
            settings.database.url,
            pool_size=settings.database.pool_size,
            echo=settings.database.echo,
        )
        store = ClientStore(engine)
        keyset = KeySet(settings.auth.signing_key_path, settings.auth.token_ttl)
        issuer = TokenIssuer(keyset, settings.auth.issuer, settings.auth.audience,
                             settings.auth.token_ttl)
        external = ExternalIssuers(settings.auth.issuers, settings.auth.jwks_cache_ttl)
        http = outbound_session()
        external.session = http
        authenticator = Authenticator(store, issuer, external, settings.auth.cache_ttl)
        definitions = DefinitionRegistry(settings)
        report = definitions.load()
        log.info("definitions", directory=str(definitions.directory),
                 loaded=len(report.loaded), broken_files=len({p.file for p in report.problems}))
        if not report.loaded:
            log.warning("no_definitions", directory=str(definitions.directory),
                        hint="nothing is served at /services until definitions are added")
        databases = NamedDatabases(settings.databases)
        webhooks = WebhookService(engine, settings.webhooks,
                                  SecretBox.load(settings.secrets.key_file))
        identity = IdentityService.create(settings.identity, engine)
        jobs = JobService(engine, settings.jobs)
        auth = settings.auth

        async def login_failed(data: dict[str, Any]) -> None:
            await webhooks.publisher.publish("userloginfailed", data)

        logins = LoginGuard(per_client=auth.login_failures,
                            per_address=auth.login_failures_per_address,
                            window=auth.login_failure_window, workers=auth.secret_workers,
                            queue=auth.secret_queue, publish=login_failed)
        return cls(settings, engine, store, keyset, issuer, external, authenticator, http,
                   definitions, databases, webhooks, identity, jobs, logins)

    def spawn(self, name: str, coro: Any) -> None:
        """Run a background worker; readiness fails if it dies."""
        task = asyncio.create_task(coro, name=name)
        self.workers[name] = task

    async def check_database(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:
            log.warning("database_unreachable", error=str(exc))
            return False

    def dead_workers(self) -> list[str]:
        return [name for name, task in self.workers.items() if task.done()]

    async def start_background(self) -> None:
        """Start the background workers this node runs (delivery, jobs, reload...)."""
        if self.settings.definitions.watch:
            self._definitions_seen = self.definitions.fingerprint()
            self.definitions.on_reload(self._announce_reload)
            self.spawn("definitions-watch", self.definitions.watch())
        self.start_workers()

    async def _announce_reload(self, report: ReloadReport) -> None:
        """Raise `refreshcache` after definitions changed. Every worker process reloads the same
        files; the event id is derived from the before/after content, so it is raised once."""
        before, after = self._definitions_seen, self.definitions.fingerprint()
        self._definitions_seen = after
        event_id = "refreshcache-" + hashlib.sha256(f"{before}>{after}".encode()).hexdigest()[:40]
        await self.events.publish(
            "refreshcache",
            {
                "reason": "definitions",
                "added": report.added,
                "removed": report.removed,
                "changed": report.changed,
                "brokenFiles": sorted({str(p.file) for p in report.problems}),
            },
            id=event_id,
        )

    def start_workers(self, *, webhook_workers: int | None = None) -> None:
        """The queue consumers (`servicegate worker` runs only these)."""
        self.webhooks.start_workers(self.spawn, workers=webhook_workers)
        self.jobs.start_workers(self.spawn, self.definitions, self, self.events)

    async def stop_background(self) -> None:
        for task in self.workers.values():
            task.cancel()
        if self.workers:
            await asyncio.gather(*self.workers.values(), return_exceptions=True)
        self.workers.clear()
        self.jobs.close()
        await self.webhooks.close()

    async def stop(self) -> None:
        await self.logins.close()  # publishes counted login failures: before the publisher
        await self.stop_background()
        await self.http.close()
        if self._public_http is not None:
            await self._public_http.close()
        await self.databases.close()
        await self.identity.close()
        await self.engine.dispose()
