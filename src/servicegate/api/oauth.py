"""POST /oauth2/token (RFC 6749 §4.4 client credentials), GET /.well-known/jwks.json and the
authorization server metadata (RFC 8414) that points clients at both."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.state import runtime_of
from servicegate.auth import credentials
from servicegate.auth.keyset import ALGORITHM
from servicegate.auth.logins import Throttled
from servicegate.auth.scopes import grants, known_scopes
from servicegate.web.problems import problem_response
from servicegate.web.responses import JSONResponse

log = structlog.get_logger("servicegate.oauth")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_STATUS = {
    "invalid_request": 400,
    "invalid_client": 401,
    "invalid_grant": 400,
    "invalid_scope": 400,
    "unsupported_grant_type": 400,
    "unauthorized_client": 400,
}


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _oauth_problem(request: Request, exc: OAuthError) -> Response:
    status = _STATUS[exc.error]
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="servicegate"'
    return problem_response(
        request,
        status,
        exc.description,
        headers=headers,
        title=exc.error,
        error=exc.error,
        error_description=exc.description,
    )


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send the parameters as application/x-www-form-urlencoded")
    raw = await request.body()
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw),
                          max_num_fields=20)
    except (ValueError, UnicodeDecodeError):
        raise OAuthError("invalid_request", "malformed form body") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise OAuthError("invalid_request", f"parameter {key!r} given more than once")
        form[key] = value
    return form


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization")
    in_form = "client_id" in form or "client_secret" in form
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "use HTTP Basic or form fields for client credentials")
        if in_form and "client_secret" in form:
            raise OAuthError("invalid_request", "client credentials given twice")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic credentials") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "malformed Basic credentials")
        return unquote(client_id), unquote(secret)
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or not secret:
        raise OAuthError("invalid_client", "client authentication required")
    return client_id, secret


async def _login_event(request: Request, event: str, data: dict[str, object]) -> None:
    """Raise `userlogin` / `userloginfailed`; a storage hiccup never fails the token request."""
    try:
        await runtime_of(request).events.publish(event, {
            **data, "grantType": "client_credentials",
            "remoteAddress": request.client.host if request.client else None})
    except Exception as exc:
        log.warning("login_event_failed", event_name=event, error=str(exc))


async def token(request: Request) -> Response:
    runtime = runtime_of(request)
    attempted: str | None = None
    address = request.client.host if request.client else "unknown"
    try:
        form = await _form(request)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        client_id, secret = _client_credentials(request, form)
        attempted = client_id[:64]
        # before any lookup or hash: a throttled attempt costs the gateway next to nothing
        runtime.logins.attempt(attempted, address)
        if len(client_id) > 64 or len(secret) > 256:
            raise OAuthError("invalid_client", "client authentication failed")
        found = await runtime.clients.secret_hash(client_id)
        stored_hash = found[1] if found else credentials.dummy_hash()
        ok = await runtime.logins.verify(attempted, address, stored_hash, secret)
        if found is None or not ok or not found[0].enabled:
            raise OAuthError("invalid_client", "client authentication failed")
        runtime.logins.succeeded(attempted, address)
        client = found[0]
        held = frozenset(client.scopes)
        requested = form.get("scope", "").split()
        if requested:
            refused = [s for s in requested if not grants(held, s)]
            if refused:
                raise OAuthError("invalid_scope", "scope not granted to this client: "
                                 + " ".join(refused))
            scopes = list(dict.fromkeys(requested))
        else:
            scopes = list(client.scopes)
        access_token, expires_in = runtime.issuer.issue(client.id, scopes)
    except OAuthError as exc:
        if exc.error == "invalid_client" and attempted:
            await runtime.logins.failed(attempted, {
                "clientId": attempted, "reason": exc.description,
                "grantType": "client_credentials", "remoteAddress": address})
        return _oauth_problem(request, exc)
    except Throttled as exc:
        return problem_response(request, 429, str(exc), headers={
            **NO_STORE, "Retry-After": str(exc.retry_after)}, retryAfter=exc.retry_after)
    await _login_event(request, "userlogin",
                       {"clientId": client.id, "name": client.name, "scopes": scopes})
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": " ".join(scopes),
        },
        headers=NO_STORE,
    )


async def jwks(request: Request) -> Response:
    return JSONResponse(
        runtime_of(request).keyset.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


def _base(request: Request) -> str:
    """The gateway's URL as the client addressed it: scheme, host and `root_path`, which
    holds both a server's root path and the `[server] base_path` mount."""
    return str(request.base_url.replace(path=request.scope.get("root_path", ""))).rstrip("/")


def issuer_of(request: Request, base: str) -> str:
    """`[auth] issuer` when it is a URL (the `iss` of every issued token), else the URL the
    client addressed the gateway by."""
    configured = runtime_of(request).issuer.issuer
    if configured.startswith(("https://", "http://")):
        return configured
    return base


async def _metadata(request: Request, base: str) -> Response:
    """RFC 8414 metadata, also served as `openid-configuration`, where most frameworks that
    are given an issuer URI look. Endpoints are absolute URLs under the address the client
    used, so a gateway behind a base path or a proxy advertises what the client can reach."""
    scopes = known_scopes(runtime_of(request).definitions.scopes())
    return JSONResponse(
        {
            "issuer": issuer_of(request, base),
            "token_endpoint": f"{base}/oauth2/token",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": sorted(scopes),
            # RFC 8414 requires the member; without an authorization endpoint the only honest
            # value is `none` (no response type issues anything there)
            "response_types_supported": ["none"],
            # OpenID Connect discovery requires these two; the gateway issues no ID tokens,
            # but the access tokens are signed with this algorithm
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


async def server_metadata(request: Request) -> Response:
    return await _metadata(request, _base(request))


def routes() -> list[Route]:
    credentials.dummy_hash()  # made with the app, so no token request waits for it
    return [
        Route("/oauth2/token", token, methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", server_metadata, methods=["GET"]),
        Route("/.well-known/openid-configuration", server_metadata, methods=["GET"]),
    ]


def root_routes(base_path: str) -> list[Route]:
    """Under a base path, the metadata also where RFC 8414 §3.1 puts it for an issuer with a
    path: `/.well-known/oauth-authorization-server/gw` at the host's root, outside the base."""
    if not base_path:
        return []

    async def inserted(request: Request) -> Response:
        return await _metadata(request, _base(request) + base_path)

    return [Route(f"/.well-known/{name}{base_path}", inserted, methods=["GET"])
            for name in ("oauth-authorization-server", "openid-configuration")]


_PROBLEM_CONTENT = {"application/problem+json": {"schema": {
    "$ref": "#/components/schemas/Problem"}}}
_METADATA = {
    "type": "object",
    "required": ["issuer", "token_endpoint", "jwks_uri", "response_types_supported"],
    "properties": {
        "issuer": {"type": "string"}, "token_endpoint": {"type": "string"},
        "jwks_uri": {"type": "string"},
        "grant_types_supported": {"type": "array", "items": {"type": "string"}},
        "token_endpoint_auth_methods_supported": {"type": "array", "items": {"type": "string"}},
        "scopes_supported": {"type": "array", "items": {"type": "string"}},
        "response_types_supported": {"type": "array", "items": {"type": "string"}},
    },
}
OPENAPI = {
    "/oauth2/token": {
        "post": {
            "operationId": "issueToken", "tags": ["Auth"],
            "summary": "OAuth2 client credentials grant (RFC 6749 §4.4)",
            "requestBody": {
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["grant_type"],
                            "properties": {
                                "grant_type": {"const": "client_credentials"},
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string"},
                                "scope": {"type": "string"},
                            },
                        }
                    }
                }
            },
            "security": [],
            "responses": {
                "200": {"description": "The access token (RFC 6749 §5.1)", "content": {
                    "application/json": {"schema": {
                        "type": "object",
                        "required": ["access_token", "token_type", "expires_in"],
                        "properties": {"access_token": {"type": "string"},
                                       "token_type": {"const": "Bearer"},
                                       "expires_in": {"type": "integer"},
                                       "scope": {"type": "string"}}}}}},
                "400": {"$ref": "#/components/responses/Problem"},
                "401": {"$ref": "#/components/responses/Problem"},
                "429": {"description": "too many failed client authentications from this "
                                       "address or for this client id; see Retry-After",
                        "content": _PROBLEM_CONTENT},
            },
        }
    },
    "/.well-known/jwks.json": {
        "get": {"operationId": "getJwks",
                "tags": ["Auth"], "summary": "Public keys that verify issued tokens",
                "security": [],
                "responses": {"200": {"description": "JWK set (RFC 7517)", "content": {
                    "application/json": {"schema": {
                        "type": "object", "required": ["keys"],
                        "properties": {"keys": {"type": "array", "items": {
                            "type": "object", "required": ["kty"],
                            "properties": {"kty": {"type": "string"}, "kid": {"type": "string"},
                                           "use": {"type": "string"},
                                           "alg": {"type": "string"}}}}}}}}}}}
    },
    "/.well-known/oauth-authorization-server": {
        "get": {"operationId": "getAuthorizationServerMetadata", "tags": ["Auth"],
                "summary": "OAuth 2.0 authorization server metadata (RFC 8414)",
                "security": [],
                "responses": {"200": {"description": "issuer, token_endpoint, jwks_uri, ...",
                                      "content": {"application/json": {"schema": _METADATA}}}}}
    },
    "/.well-known/openid-configuration": {
        "get": {"operationId": "getOpenidConfiguration", "tags": ["Auth"],
                "summary": "The same metadata where OpenID Connect discovery looks for it",
                "security": [],
                "responses": {"200": {"description": "issuer, token_endpoint, jwks_uri, ...",
                                      "content": {"application/json": {"schema": _METADATA}}}}}
    },
}
