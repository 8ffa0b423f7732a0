"""`http`: forward to an upstream through the process-wide aiohttp session."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any, Literal

import aiohttp
import orjson
import structlog
from multidict import CIMultiDict
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from yarl import URL

from servicegate.actions.base import (
    Action,
    ActionResult,
    ActionSpec,
    ActionType,
    BuildContext,
    Invocation,
    gateway_variables,
)
from servicegate.actions.errors import action_problem
from servicegate.actions.headers import HEADER_NAME, compile_headers, render_headers
from servicegate.actions.registry import register
from servicegate.actions.subpath import (
    UnsafePath,
    assemble,
    checked_url,
    encode_segments,
    literal_base,
)
from servicegate.durations import Duration
from servicegate.egress import TargetRefused, UnsafeURL, judge, refused_by, target
from servicegate.expressions import (
    PartsTemplate,
    Value,
    compile_parts,
    compile_value,
    constant_text,
    is_literal,
)

log = structlog.get_logger("servicegate.actions.http")

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
DEFAULT_FORWARD = ("accept", "accept-language", "content-type")
# A URL whose only template is the sub-path: `http://crm/base/{{ subpath }}[suffix]`.
_SUBPATH_ONLY = re.compile(r"^(?P<prefix>https?://[^{}%]+/)\{\{\s*subpath\s*\}\}(?P<suffix>[^{}%]*)$")
# Upstream response headers never passed back: hop-by-hop ones, those the gateway sets itself
# (length, type, date, server, request id) and content-encoding (the body arrives decoded).
NOT_PASSED_BACK = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "content-length", "content-encoding",
    "content-type", "date", "server", "x-request-id",
})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeadersSpec(Strict):
    forward: list[str] = Field(default_factory=list,
                               description="Request headers passed to the upstream "
                               "(besides accept, accept-language, content-type)")
    set: dict[str, str] = Field(default_factory=dict, description="Headers injected (templated)")

    @field_validator("forward")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
        return [name.lower() for name in value]


class RetrySpec(Strict):
    attempts: int = Field(2, ge=0, le=10, description="Retries after the first attempt")
    backoff: Duration = Field(0.1, description="First wait; doubles with jitter")
    max_backoff: Duration = 2.0
    on_status: list[int] = Field(default_factory=lambda: [502, 503, 504])


class ResponseSpec(Strict):
    status: Any = Field(None, description="Status to answer (default: the upstream's)")
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(None, description="Mapping over `response` (status, headers, body) "
                      "and the context; default: the upstream body")


class HttpSpec(ActionSpec):
    """Forward the request to an upstream URL."""

    type: Literal["http"]
    url: str = Field(description="Upstream URL; may use {{ subpath }} (safely encoded)")
    method: Method | None = Field(None, description="Default: the incoming method")
    headers: HeadersSpec = Field(default_factory=HeadersSpec)
    query: Literal["passthrough", "none"] | dict[str, Any] = "passthrough"
    body: Any = Field("passthrough", description="`passthrough`, `none`, or a JSON mapping")
    timeout: Duration = 10.0
    retries: int | RetrySpec = Field(0, description="Retries for idempotent methods only")
    response: Literal["passthrough"] | ResponseSpec = "passthrough"

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "{{")):
            raise ValueError("must be an absolute http:// or https:// URL (a template may "
                             "start with {{ env.X }})")
        return value


class UpstreamFailed(Exception):
    def __init__(self, kind: Literal["unreachable", "timeout", "status"], detail: str,
                 result: ActionResult | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.result = result


class HttpAction(Action):
    def __init__(self, spec: HttpSpec, ctx: BuildContext, where: str) -> None:
        self.definition = ctx.definition
        # `{{ gateway.url }}` is the gateway's own address, known now: such a URL is as fixed
        # as a literal one
        url = constant_text(spec.url, {"gateway": gateway_variables(ctx.settings)}) or spec.url
        self.url = compile_parts(url, f"{where}.url")
        self.base = literal_base(url)
        self.literal_url = checked_url(url, None) if is_literal(self.url) else None
        # An origin the operator wrote is trusted as written (internal upstreams are the point
        # of a gateway); an origin a template renders is read the way the client reads it and,
        # unless `[definitions] allow_private_networks`, judged like a webhook's target and
        # sent through the session whose resolver refuses non-public addresses.
        self.templated_origin = self.base is None and self.literal_url is None
        self.guarded = (self.templated_origin
                        and not ctx.settings.definitions.allow_private_networks)
        # The common `{{ subpath }}` URL is joined from its parts, not rendered: the segments
        # were decoded, checked and are encoded again for the path, so the joined URL stays
        # below the base checked here.
        self.subpath_url: tuple[str, str] | None = None
        simple = _SUBPATH_ONLY.match(url)
        if simple is not None and self.base is not None:
            self.subpath_url = (simple.group("prefix"), simple.group("suffix"))
            checked_url(simple.group("prefix") + "x" + simple.group("suffix"), self.base)
        self.method = spec.method
        self.forward = tuple(dict.fromkeys((*DEFAULT_FORWARD, *spec.headers.forward)))
        self.set_headers = compile_headers(spec.headers.set, f"{where}.headers.set")
        self.query: str | Value = (spec.query if isinstance(spec.query, str)
                                   else compile_value(spec.query, f"{where}.query"))
        self.body: str | Value = (spec.body if spec.body in ("passthrough", "none")
                                  else compile_value(spec.body, f"{where}.body"))
        self.timeout = aiohttp.ClientTimeout(total=spec.timeout)
        self.timeout_seconds = spec.timeout
        retry = RetrySpec(attempts=spec.retries) if isinstance(spec.retries, int) else spec.retries
        self.retry = retry if retry.attempts > 0 else None
        self.max_seconds = spec.timeout if self.retry is None else None
        self.max_bytes = ctx.settings.definitions.max_upstream_response_bytes
        self.response: ResponseSpec | None = None
        if isinstance(spec.response, ResponseSpec):
            self.response = spec.response
            self.r_status = compile_value(spec.response.status, f"{where}.response.status")
            self.r_headers = compile_headers(spec.response.headers, f"{where}.response.headers")
            self.r_body = (compile_value(spec.response.body, f"{where}.response.body")
                           if "body" in spec.response.model_fields_set else None)

    def captured_headers(self) -> set[str]:
        return set(self.forward)

    async def run(self, invocation: Invocation) -> ActionResult:
        ctx = invocation.context
        url = self.literal_url or self._url(invocation)
        method = self.method or ctx.method
        headers = self._headers(ctx.headers, ctx.request_id, invocation)
        query = self.query
        params = ((ctx.query or None) if query == "passthrough"
                  else None if query == "none" else self._params(invocation))
        data = (ctx.raw_body or None) if self.body == "passthrough" else self._body(invocation,
                                                                                     headers)
        session = invocation.services.public_http if self.guarded else invocation.services.http
        result = await self._send(session, method, url, headers, params, data)
        if self.response is None:
            return result
        return self._mapped(result, invocation.variables)

    def _url(self, invocation: Invocation) -> URL:
        if self.subpath_url is not None:
            prefix, suffix = self.subpath_url
            return URL(prefix + encode_segments(invocation.context.segments) + suffix,
                       encoded=True)
        assert isinstance(self.url, PartsTemplate)
        try:
            url = checked_url(assemble(self.url.render(invocation.variables)), self.base)
            if self.templated_origin:
                url = target(url)
                if self.guarded:
                    judge(url)
            return url
        except (UnsafePath, UnsafeURL, TargetRefused) as exc:
            raise action_problem(400, f"definition {self.definition!r} refused the upstream "
                                 f"URL: {str(exc).removeprefix('refused: ')}",
                                 self.definition) from None

    def _headers(self, captured: dict[str, str], request_id: str,
                 invocation: Invocation) -> CIMultiDict[str]:
        """Forwarded request headers, then the `set` ones (rendered), then X-Request-Id."""
        headers: CIMultiDict[str] = CIMultiDict()
        for name in self.forward:
            value = captured.get(name)
            if value is not None:
                headers[name] = value
        if self.set_headers:
            headers.update(render_headers(self.set_headers, invocation.variables, self.definition))
        if request_id:
            headers["X-Request-Id"] = request_id
        return headers

    def _send(self, session: aiohttp.ClientSession, method: str, url: URL,
              headers: CIMultiDict[str], params: list[tuple[str, str]] | None,
              data: bytes | None) -> Awaitable[ActionResult]:
        """One attempt, or attempts with retries for idempotent methods."""
        if self.retry is None or method not in IDEMPOTENT:
            return self._attempt(session, method, url, headers, params, data, None)
        return self._with_retries(session, self.retry, method, url, headers, params, data)

    def _params(self, invocation: Invocation) -> list[tuple[str, str]]:
        """The query mapping rendered (`passthrough` and `none` are handled in `run`)."""
        assert isinstance(self.query, Value)
        rendered = self.query.render(invocation.variables)
        if not isinstance(rendered, dict):
            raise action_problem(500, f"definition {self.definition!r}: query mapping must "
                                 "produce an object", self.definition)
        params: list[tuple[str, str]] = []
        for key, value in rendered.items():
            for item in value if isinstance(value, list) else [value]:
                if item is not None:
                    params.append((key, _scalar(item)))
        return params

    def _body(self, invocation: Invocation, headers: CIMultiDict[str]) -> bytes | None:
        """`none` or the body mapping rendered (`passthrough` is handled in `run`)."""
        if self.body == "none":
            headers.popall("content-type", None)
            return None
        assert isinstance(self.body, Value)
        headers["Content-Type"] = "application/json"
        return orjson.dumps(self.body.render(invocation.variables))

    async def _with_retries(self, session: aiohttp.ClientSession, retry: RetrySpec, method: str,
                            url: Any, headers: CIMultiDict[str],
                            params: list[tuple[str, str]] | None,
                            data: bytes | None) -> ActionResult:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(retry.attempts + 1),
                wait=wait_exponential_jitter(multiplier=retry.backoff, max=retry.max_backoff,
                                             jitter=retry.backoff),
                retry=retry_if_exception_type(UpstreamFailed),
                reraise=True,
            ):
                with attempt:
                    return await self._attempt(session, method, url, headers, params, data,
                                               retry.on_status)
        except UpstreamFailed as exc:
            return self._failed(exc, url)
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, exc: UpstreamFailed, url: Any) -> ActionResult:
        if exc.kind == "status" and exc.result is not None:
            return exc.result  # retries exhausted: answer what the upstream said
        status = 504 if exc.kind == "timeout" else 502
        raise action_problem(status, f"definition {self.definition!r}: {exc}",
                             self.definition, upstream=str(url.origin())) from None

    async def _attempt(self, session: aiohttp.ClientSession, method: str, url: Any, headers: CIMultiDict[str],
                       params: list[tuple[str, str]] | None, data: bytes | None,
                       retry_statuses: Any) -> ActionResult:
        """One request upstream. `retry_statuses` None: the only attempt, a failure answered
        here (`_failed`); else UpstreamFailed, also for an answer with one of those statuses."""
        try:
            try:
                async with session.request(method, url, headers=headers, params=params,
                                           data=data, timeout=self.timeout,
                                           allow_redirects=False) as resp:
                    passed = passed_back(resp.raw_headers)
                    length = resp.content_length
                    if length is not None:
                        if length > self.max_bytes:
                            raise UpstreamFailed("unreachable", f"upstream response of {length} "
                                                 "bytes exceeds the limit")
                        raw = await resp.read()
                    else:
                        raw = await self._read_capped(resp)
                    result = ActionResult(resp.status, passed, None, raw,
                                          resp.headers.get("Content-Type"))
            except TimeoutError:
                raise UpstreamFailed("timeout", f"upstream did not answer within "
                                     f"{self.timeout_seconds:g}s") from None
            except aiohttp.ClientError as exc:
                refused = refused_by(exc)
                if refused is not None:
                    # a host a template chose resolved to a non-public address: the request
                    # is what is wrong, and nothing was sent
                    reason = str(refused).removeprefix("refused: ")
                    raise action_problem(400, f"definition {self.definition!r} refused the "
                                         f"upstream URL: {reason}", self.definition) from None
                raise UpstreamFailed("unreachable", f"upstream unreachable "
                                     f"({type(exc).__name__})") from None
        except UpstreamFailed as exc:
            if retry_statuses is None:
                return self._failed(exc, url)
            raise
        if retry_statuses is not None and resp.status in retry_statuses:
            raise UpstreamFailed("status", f"upstream answered {resp.status}", result)
        return result

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
            if size > self.max_bytes:
                raise UpstreamFailed("unreachable", "upstream response exceeds the limit")
            chunks.append(chunk)
        return b"".join(chunks)

    def _mapped(self, result: ActionResult, variables: dict[str, Any]) -> ActionResult:
        scope = {**variables, "response": result.as_variables()}
        status = self.r_status.render(scope)
        headers = render_headers(self.r_headers, scope, self.definition) if self.r_headers else {}
        if self.r_body is None:
            return ActionResult(int(status or result.status), {**result.headers, **headers},
                                raw=result.raw, media_type=result.media_type)
        try:
            code = int(status) if status is not None else result.status
        except (TypeError, ValueError):
            raise action_problem(500, f"definition {self.definition!r}: response.status must "
                                 "be a number", self.definition) from None
        return ActionResult(code, headers, self.r_body.render(scope))


def passed_back(raw_headers: tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    """The upstream's response headers the client gets (a repeated name: its last value)."""
    headers: dict[str, str] = {}
    for raw_name, value in raw_headers:
        name = raw_name.decode("latin-1")
        if name.lower() not in NOT_PASSED_BACK:
            headers[name] = value.decode("latin-1")
    return headers


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


TYPE = register(ActionType("http", HttpSpec, HttpAction))
