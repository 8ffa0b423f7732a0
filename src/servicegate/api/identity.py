"""GET /services/identity: simplified-OData search over identities (scope `identity:read`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.guard import authorize
from servicegate.api.state import runtime_of
from servicegate.auth.scopes import IDENTITY_READ
from servicegate.identity.odata import QueryError
from servicegate.problems import Problem
from servicegate.validation import nearest
from servicegate.web.responses import JSONResponse

OPTIONS = ("$filter", "$orderby", "$skip", "$top", "$select", "$count")
_BARE = {option[1:]: option for option in OPTIONS}


def query_problem(exc: QueryError) -> Problem:
    extensions: dict[str, object] = {"parameter": exc.parameter}
    if exc.position is not None:
        extensions["position"] = exc.position
    return Problem(400, str(exc), title="Invalid query", **extensions)


def _unknown(name: str) -> Problem:
    """A parameter that is no option. Refused rather than ignored: `filter=...` or `$fitler=...`
    answered as if absent would look like a search that found everyone."""
    bare = name.lstrip("$").lower()
    guess = _BARE.get(bare) or _BARE.get(nearest(bare, _BARE) or "")
    hint = f"; did you mean {guess}?" if guess else ""
    return Problem(400, f"unknown query option {name!r}{hint} (options: {', '.join(OPTIONS)})",
                   title="Invalid query", parameter=name)


def _options(request: Request) -> dict[str, str | None]:
    params = request.query_params
    for name in params:
        if name not in OPTIONS:
            raise _unknown(name)
    values: dict[str, str | None] = {}
    for name in OPTIONS:
        given = params.getlist(name)
        if len(given) > 1:
            raise Problem(400, f"{name} given more than once", title="Invalid query",
                               parameter=name)
        if given and not given[0].strip():
            # `$top=` is a mistake (a template left empty), not a request for the default
            raise Problem(400, f"{name} is empty; give it a value or leave it out",
                          title="Invalid query", parameter=name, position=0)
        values[name] = given[0] if given else None
    count = values["$count"]
    # the total is always answered, so `$count=true` asks for nothing more
    if count is not None and count.strip().lower() not in ("true", "false"):
        raise Problem(400, f"$count must be true or false, not {count!r}",
                      title="Invalid query", parameter="$count", position=0)
    return values


async def search_identities(request: Request) -> Response:
    await authorize(request, IDENTITY_READ)
    opts = _options(request)
    searcher = runtime_of(request).identity.search
    try:
        query = searcher.prepare(opts["$filter"], opts["$orderby"], opts["$skip"], opts["$top"],
                                 opts["$select"])
    except QueryError as exc:
        raise query_problem(exc) from None
    page = await searcher.run(query)
    return JSONResponse(page.to_json(), headers={"Cache-Control": "no-store"})


def routes() -> list[Route]:
    return [Route("/services/identity", search_identities, methods=["GET"])]


_PARAMS = [
    {"name": "$filter", "in": "query", "schema": {"type": "string", "maxLength": 2048},
     "description": "Filter conditions in simplified OData, e.g. "
                    "startswith(fullname,'Anders') and addresses/any(a: a/city eq 'Lund')"},
    {"name": "$skip", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0},
     "description": "List offset when paginating (default 0)"},
    {"name": "$top", "in": "query",
     "schema": {"type": "integer", "minimum": 0, "maximum": 100, "default": 25},
     "description": "Maximum size of result (default 25, max 100)"},
    {"name": "$orderby", "in": "query", "schema": {"type": "string"},
     "description": "Sorting conditions, e.g. \"fullname desc, idnumber\" (ties broken by id)"},
    {"name": "$select", "in": "query", "schema": {"type": "string", "maxLength": 1024},
     "description": "Properties to answer, e.g. \"fullName,idnumber\" (the id always)"},
    {"name": "$count", "in": "query", "schema": {"type": "boolean"},
     "description": "Accepted for OData clients; the total is always answered"},
]

_PAGE = {"type": "object", "properties": {
    "count": {"type": "integer"}, "skip": {"type": "integer"}, "total": {"type": "integer"},
    "value": {"type": "array", "items": {"type": "object"}}}}
OPENAPI = {
    "/services/identity": {
        "get": {
            "operationId": "searchIdentities", "tags": ["Identity"],
            "summary": "Get identity using filters",
            "security": [{"oauth2apikey": ["identity:read"]}],
            "parameters": _PARAMS,
            "responses": {
                "200": {"description": "A page of identities",
                        "content": {"application/json": {"schema": _PAGE, "example": {
                            "count": 0, "skip": 0, "total": 0, "value": []}}}},
                "400": {"description": "Invalid $filter/$orderby/$skip/$top; `position` gives "
                                       "the character and `parameter` the option",
                        "content": {"application/problem+json": {"schema": {
                            "$ref": "#/components/schemas/Problem"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
            },
        }
    }
}
