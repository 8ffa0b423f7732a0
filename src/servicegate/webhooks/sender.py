"""Sending one delivery request and describing what happened."""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from servicegate.clock import utcnow
from servicegate.egress import refused_by
from servicegate.webhooks.policy import parse_retry_after
from servicegate.webhooks.targets import TargetRefused, check_target


@dataclass(frozen=True, slots=True)
class AttemptResult:
    started_at: datetime
    duration: float
    status_code: int | None = None
    response_body: str | None = None
    error: str | None = None
    retry_after: float | None = None
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def _text(raw: bytes) -> str:
    """A response body as storable text (PostgreSQL text cannot hold NUL)."""
    return raw.decode("utf-8", "replace").replace("\x00", "\ufffd")


@functools.lru_cache(maxsize=16)
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds)


def _refused(started_at: datetime, start: float, exc: TargetRefused) -> AttemptResult:
    return AttemptResult(started_at, time.perf_counter() - start,
                         error=str(exc)[:500].replace("\x00", "\ufffd"), refused=True)


async def send(session: aiohttp.ClientSession, method: str, url: str, content: bytes,
               headers: dict[str, str], *, timeout: float, body_limit: int,  # noqa: ASYNC109
               allow_private: bool, started_at: datetime | None = None) -> AttemptResult:
    started_at = started_at or utcnow()
    start = time.perf_counter()
    try:
        target = check_target(url, allow_private=allow_private)
        async with session.request(
            method, target, data=content, headers=headers, allow_redirects=False,
            timeout=_timeout(timeout),
        ) as resp:
            raw = await resp.content.read(body_limit) if body_limit else b""
            retry_after = (parse_retry_after(resp.headers.get("Retry-After"))
                           if resp.status in (429, 503) else None)
            return AttemptResult(started_at, time.perf_counter() - start, resp.status,
                                 _text(raw) if raw else None,
                                 retry_after=retry_after)
    except TimeoutError:
        error = f"timed out after {timeout:g}s"
    except TargetRefused as exc:
        return _refused(started_at, start, exc)
    except aiohttp.ClientError as exc:
        refused = refused_by(exc)
        if refused is not None:
            return _refused(started_at, start, refused)
        error = f"{type(exc).__name__}: {exc}"
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return AttemptResult(started_at, time.perf_counter() - start,
                         error=error[:500].replace("\x00", "\ufffd"))
