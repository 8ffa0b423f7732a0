"""PUT/DELETE/GET /admin/identities/{id}: maintain the gateway's own identities (scope `admin`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api import openapi
from servicegate.api.guard import authorize
from servicegate.api.openapi import STR, obj, ok
from servicegate.api.state import runtime_of
from servicegate.auth.scopes import ADMIN
from servicegate.identity.model import ID_PATTERN, Identity
from servicegate.identity.service import IdentityService
from servicegate.problems import Problem
from servicegate.web.bodies import json_body, validated
from servicegate.web.responses import JSONResponse


def _service(request: Request) -> IdentityService:
    return runtime_of(request).identity


def _id(request: Request) -> str:
    import re

    value = request.path_params["identity_id"]
    if not re.match(ID_PATTERN, value):
        raise Problem(400, "an identity id is 1-64 letters, digits or ._:@- "
                           "(starting with a letter or digit)")
    return str(value)


def _writable(service: IdentityService) -> None:
    if not service.writable:
        raise Problem(409, "identities are searched in an external read-only source "
                           "([identity] source = \"sql\"); read and change them there")


async def put_identity(request: Request) -> Response:
    await authorize(request, ADMIN)
    identity_id = _id(request)
    service = _service(request)
    _writable(service)
    data = await json_body(request)
    if not isinstance(data, dict):
        raise Problem(400, "the body must be a JSON object (an identity)")
    if "id" in data and data["id"] != identity_id:
        raise Problem(400, f"the body's id {data['id']!r} differs from the path's "
                           f"{identity_id!r}")
    identity = validated(Identity, {**data, "id": identity_id})
    created = await service.store.put(identity)
    doc = await service.store.get(identity_id)
    return JSONResponse(doc, status_code=201 if created else 200)


async def get_identity(request: Request) -> Response:
    await authorize(request, ADMIN)
    service = _service(request)
    _writable(service)
    doc = await service.store.get(_id(request))
    if doc is None:
        raise Problem(404, "no such identity")
    return JSONResponse(doc, headers={"Cache-Control": "no-store"})


async def delete_identity(request: Request) -> Response:
    await authorize(request, ADMIN)
    identity_id = _id(request)
    service = _service(request)
    _writable(service)
    if not await service.store.delete(identity_id):
        raise Problem(404, "no such identity")
    return Response(status_code=204)


def routes() -> list[Route]:
    path = "/admin/identities/{identity_id}"
    return [
        Route(path, put_identity, methods=["PUT"]),
        Route(path, get_identity, methods=["GET"]),
        Route(path, delete_identity, methods=["DELETE"]),
    ]


_SEC = [{"oauth2apikey": ["admin"]}]
_ERR = {"400": {"$ref": "#/components/responses/Problem"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"}}
# The body's id may be left out: the path's is used.
_BODY = openapi.request_body(openapi.model_schema(Identity, name="IdentityInput", optional=("id",)))
_IDENTITY = obj(id=STR)
OPENAPI = {
    "/admin/identities/{identity_id}": {
        "put": {"operationId": "putIdentity",
                "tags": ["Admin"], "summary": "Create or replace an identity", "security": _SEC,
                "requestBody": _BODY,
                "responses": {"200": ok("replaced", _IDENTITY), "201": ok("created", _IDENTITY),
                              "409": {"description": "external read-only source"}, **_ERR}},
        "get": {"operationId": "getIdentity",
                "tags": ["Admin"], "summary": "Show one identity", "security": _SEC,
                "responses": {"200": ok("identity", _IDENTITY),
                              "404": {"description": "unknown"},
                              "409": {"description": "external read-only source"}, **_ERR}},
        "delete": {"operationId": "deleteIdentity",
                   "tags": ["Admin"], "summary": "Delete an identity", "security": _SEC,
                   "responses": {"204": {"description": "deleted"},
                                 "404": {"description": "unknown"},
                                 "409": {"description": "external read-only source"}, **_ERR}},
    }
}
