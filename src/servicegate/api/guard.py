"""The one authentication and scope check every endpoint calls first."""

from __future__ import annotations

from starlette.requests import Request

from servicegate.api.state import runtime_of
from servicegate.auth.authenticator import Unauthenticated
from servicegate.auth.principal import Principal
from servicegate.auth.scopes import missing
from servicegate.problems import Problem
from servicegate.runtime import Runtime

CHALLENGE = 'Bearer realm="servicegate", ApiKey header="X-API-Key"'


async def authenticate(request: Request, runtime: Runtime | None = None) -> Principal:
    api_key = authorization = None
    for name, value in request.headers.raw:  # the first of each, in one pass
        if name == b"x-api-key" and api_key is None:
            api_key = value.decode("latin-1")
        elif name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    try:
        return await (runtime or runtime_of(request)).authenticator.authenticate(
            api_key, authorization)
    except Unauthenticated as exc:
        challenge = CHALLENGE if "required" in str(exc) else f'{CHALLENGE}, error="invalid_token"'
        raise Problem(401, str(exc), headers={"WWW-Authenticate": challenge}) from None


def require_scopes(principal: Principal, *scopes: str) -> None:
    lacking = missing(principal.scopes, scopes)
    if lacking:
        raise Problem(
            403,
            f"this {_holder(principal)} lacks the scope{'s' if len(lacking) > 1 else ''} "
            + ", ".join(lacking),
            missingScopes=lacking,
        )


def _holder(principal: Principal) -> str:
    """Who lacks a scope: an access token may hold fewer scopes than its client (the token
    endpoint narrows them), so a token's caller is told the token lacks it."""
    return "client" if principal.via == "api_key" else "token"


async def authorize(request: Request, *scopes: str) -> Principal:
    """Authenticate the caller and check that it holds every scope named."""
    principal = await authenticate(request)
    require_scopes(principal, *scopes)
    return principal
