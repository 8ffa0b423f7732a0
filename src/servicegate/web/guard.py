"""The one authentication + scope check every router calls first."""

from __future__ import annotations

from starlette.requests import Request

from servicegate.auth.authenticator import Unauthenticated
from servicegate.auth.principal import Principal
from servicegate.auth.scopes import missing
from servicegate.runtime import runtime_of
from servicegate.web.problems import ProblemError

CHALLENGE = 'Bearer realm="servicegate", ApiKey header="X-API-Key"'


def _credentials(scope_headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The first X-API-Key and Authorization values (as `request.headers.get` gives them)."""
    api_key = authorization = None
    for name, value in scope_headers:  # ASGI names are lowercase bytes
        if name == b"x-api-key":
            if api_key is None:
                api_key = value.decode("latin-1")
        elif name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    return api_key, authorization


async def authenticate(request: Request) -> Principal:
    try:
        principal = await runtime_of(request).authenticator.authenticate(
            *_credentials(request.scope["headers"])
        )
    except Unauthenticated as exc:
        raise ProblemError(
            401,
            str(exc),
            headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'
                     if "required" not in str(exc) else CHALLENGE},
        ) from None
    request.scope["state"]["principal"] = principal
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
