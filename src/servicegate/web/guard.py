"""The one authentication + scope check every router calls first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Scope

from servicegate.auth.authenticator import Authenticator, Unauthenticated
from servicegate.auth.principal import Principal
from servicegate.auth.scopes import missing
from servicegate.runtime import Runtime, runtime_of
from servicegate.web.headermap import header_map
from servicegate.web.problems import ProblemError

CHALLENGE = 'Bearer realm="servicegate", ApiKey header="X-API-Key"'


def _credentials(scope: Scope) -> tuple[str | None, str | None]:
    """The first X-API-Key and Authorization values (as `request.headers.get` gives them)."""
    by_name = header_map(scope)
    if by_name is not None:  # no name repeats: each one's only value
        api_key, authorization = by_name.get(b"x-api-key"), by_name.get(b"authorization")
        return (None if api_key is None else api_key.decode("latin-1"),
                None if authorization is None else authorization.decode("latin-1"))
    api_key = authorization = None
    for name, value in scope["headers"]:  # ASGI names are lowercase bytes
        if name == b"x-api-key":
            if api_key is None:
                api_key = value.decode("latin-1")
        elif name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    return api_key, authorization


async def authenticate(request: Request, runtime: Runtime | None = None) -> Principal:
    authenticator = (runtime or runtime_of(request)).authenticator
    return (cached_principal(request.scope, authenticator)  # no coroutine: the usual case
            or await authenticate_scope(request.scope, authenticator))


def cached_principal(scope: Scope, authenticator: Authenticator) -> Principal | None:
    """The principal of a cached API key without a coroutine (the usual case), kept in the
    scope as `authenticate` does; None: `await authenticate_scope(...)`."""
    by_name = header_map(scope)
    if by_name is not None:
        raw = by_name.get(b"x-api-key")
        api_key = None if raw is None else raw.decode("latin-1")
    else:
        api_key = _credentials(scope)[0]
    principal = authenticator.cached_key(api_key) if api_key else None
    if principal is not None:
        scope["state"]["principal"] = principal
    return principal


async def authenticate_scope(scope: Scope, authenticator: Authenticator) -> Principal:
    """`authenticate` on the ASGI scope (the `/services/{name}` path has no Request)."""
    api_key, authorization = _credentials(scope)
    principal = authenticator.cached_key(api_key) if api_key else None
    if principal is None:
        try:
            principal = await authenticator.authenticate(api_key, authorization)
        except Unauthenticated as exc:
            raise ProblemError(
                401,
                str(exc),
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'
                         if "required" not in str(exc) else CHALLENGE},
            ) from None
    scope["state"]["principal"] = principal
    return principal


def require_scopes(principal: Principal, *scopes: str) -> None:
    lacking = missing(principal.scopes, scopes)
    if lacking:
        raise ProblemError(
            403,
            f"this client lacks the scope{'s' if len(lacking) > 1 else ''} "
            + ", ".join(lacking),
            missingScopes=lacking,
        )


async def authorize(request: Request, *scopes: str) -> Principal:
    """Authenticate the caller and check that it holds every scope named."""
    principal = await authenticate(request)
    require_scopes(principal, *scopes)
    return principal
