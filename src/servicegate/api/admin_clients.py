"""/admin/clients: manage clients and API keys over HTTP (scope `admin`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.guard import authorize
from servicegate.api.openapi import BOOL, NULLABLE_TIME, STR, array, model_schema, obj, ok, request_body
from servicegate.api.state import runtime_of
from servicegate.auth.clients import ClientExists, NotFound
from servicegate.auth.scopes import ADMIN, known_scopes, validate_scopes
from servicegate.problems import Problem
from servicegate.web.bodies import parse
from servicegate.web.responses import JSONResponse

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,199}$"


class _Scopes(BaseModel):
    @field_validator("scopes", check_fields=False)
    @classmethod
    def _scopes(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        known = (info.context or {}).get("known_scopes")
        return None if value is None else validate_scopes(value, known)


class CreateClient(_Scopes):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    scopes: list[str] = Field(default_factory=list, max_length=100)


class UpdateClient(_Scopes):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, pattern=NAME_PATTERN)
    scopes: list[str] | None = Field(None, max_length=100)
    enabled: bool | None = None


def _scope_context(request: Request) -> dict[str, object]:
    return {"known_scopes": known_scopes(runtime_of(request).definitions.scopes())}


def _not_found(what: str) -> Problem:
    return Problem(404, f"no such {what}")


async def list_clients(request: Request) -> Response:
    await authorize(request, ADMIN)
    records = await runtime_of(request).clients.list()
    return JSONResponse({"count": len(records), "clients": [r.to_json() for r in records]})


async def create_client(request: Request) -> Response:
    await authorize(request, ADMIN)
    body = await parse(request, CreateClient, context=_scope_context(request))
    try:
        created = await runtime_of(request).clients.create(body.name, body.scopes)
    except ClientExists:
        raise Problem(409, f"a client named {body.name!r} already exists") from None
    return JSONResponse(
        {
            "client": created.client.to_json(),
            "clientId": created.client.id,
            "clientSecret": created.client_secret,
            "apiKey": created.api_key,
            "keyId": created.key_id,
        },
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


async def show_client(request: Request) -> Response:
    await authorize(request, ADMIN)
    store = runtime_of(request).clients
    try:
        record = await store.get(request.path_params["client_id"])
        keys = await store.keys(record.id)
    except NotFound:
        raise _not_found("client") from None
    return JSONResponse({**record.to_json(), "keys": [k.to_json() for k in keys]})


async def update_client(request: Request) -> Response:
    await authorize(request, ADMIN)
    body = await parse(request, UpdateClient, context=_scope_context(request))
    runtime = runtime_of(request)
    try:
        record = await runtime.clients.update(
            request.path_params["client_id"],
            enabled=body.enabled,
            scopes=body.scopes,
            name=body.name,
        )
    except NotFound:
        raise _not_found("client") from None
    except ClientExists:
        raise Problem(409, f"a client named {body.name!r} already exists") from None
    runtime.authenticator.forget_all()
    return JSONResponse(record.to_json())


async def delete_client(request: Request) -> Response:
    await authorize(request, ADMIN)
    runtime = runtime_of(request)
    try:
        await runtime.clients.delete(request.path_params["client_id"])
    except NotFound:
        raise _not_found("client") from None
    runtime.authenticator.forget_all()
    return Response(status_code=204)


async def add_key(request: Request) -> Response:
    await authorize(request, ADMIN)
    try:
        key, api_key = await runtime_of(request).clients.add_key(request.path_params["client_id"])
    except NotFound:
        raise _not_found("client") from None
    return JSONResponse(
        {**key.to_json(), "keyId": key.id, "apiKey": api_key},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


async def revoke_key(request: Request) -> Response:
    await authorize(request, ADMIN)
    runtime = runtime_of(request)
    try:
        key = await runtime.clients.revoke_key(
            request.path_params["client_id"], request.path_params["key_id"]
        )
    except NotFound:
        raise _not_found("client or active key") from None
    runtime.authenticator.forget_all()
    return JSONResponse(key.to_json())


def routes() -> list[Route]:
    return [
        Route("/admin/clients", list_clients, methods=["GET"]),
        Route("/admin/clients", create_client, methods=["POST"]),
        Route("/admin/clients/{client_id}", show_client, methods=["GET"]),
        Route("/admin/clients/{client_id}", update_client, methods=["PATCH"]),
        Route("/admin/clients/{client_id}", delete_client, methods=["DELETE"]),
        Route("/admin/clients/{client_id}/keys", add_key, methods=["POST"]),
        Route("/admin/clients/{client_id}/keys/{key_id}", revoke_key, methods=["DELETE"]),
    ]


_SEC = [{"oauth2apikey": ["admin"]}]
_ERR = {"400": {"$ref": "#/components/responses/Problem"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"}}
_NOT_FOUND = {"404": {"$ref": "#/components/responses/Problem"}}
_CONFLICT = {"409": {"$ref": "#/components/responses/Problem"}}
CLIENT = obj(id=STR, name=STR, scopes=array(STR), enabled=BOOL, createdAt=NULLABLE_TIME,
             updatedAt=NULLABLE_TIME)
KEY = obj(id=STR, hint=STR, createdAt=NULLABLE_TIME, revokedAt=NULLABLE_TIME, active=BOOL)
_SHOWN_ONCE = "shown once: stored hashed, never answered again"
OPENAPI = {
    "/admin/clients": {
        "get": {"operationId": "listClients", "tags": ["Admin"], "summary": "List clients",
                "security": _SEC,
                "responses": {"200": ok("clients", obj(count={"type": "integer"},
                                                       clients=array(CLIENT))), **_ERR}},
        "post": {"operationId": "createClient", "tags": ["Admin"],
                 "summary": "Create a client (secret and key shown once)", "security": _SEC,
                 "requestBody": request_body(model_schema(CreateClient)),
                 "responses": {"201": ok("created", obj(
                     client=CLIENT, clientId=STR, keyId=STR,
                     clientSecret={**STR, "description": _SHOWN_ONCE},
                     apiKey={**STR, "description": _SHOWN_ONCE})), **_ERR, **_CONFLICT}},
    },
    "/admin/clients/{client_id}": {
        "get": {"operationId": "getClient", "tags": ["Admin"],
                "summary": "Show a client and its keys", "security": _SEC,
                "responses": {"200": ok("client", {**CLIENT, "properties": {
                    **CLIENT["properties"], "keys": array(KEY)}}), **_ERR, **_NOT_FOUND}},
        "patch": {"operationId": "updateClient", "tags": ["Admin"],
                  "summary": "Enable/disable, rename or change scopes", "security": _SEC,
                  "requestBody": request_body(model_schema(UpdateClient)),
                  "responses": {"200": ok("client", CLIENT), **_ERR, **_NOT_FOUND, **_CONFLICT}},
        "delete": {"operationId": "deleteClient", "tags": ["Admin"], "summary": "Delete a client",
                   "security": _SEC,
                   "responses": {"204": {"description": "deleted"}, **_ERR, **_NOT_FOUND}},
    },
    "/admin/clients/{client_id}/keys": {
        "post": {"operationId": "addClientKey", "tags": ["Admin"],
                 "summary": "Add an API key (shown once)", "security": _SEC,
                 "responses": {"201": ok("key", {**KEY, "properties": {
                     **KEY["properties"], "keyId": STR,
                     "apiKey": {**STR, "description": _SHOWN_ONCE}}}), **_ERR, **_NOT_FOUND}},
    },
    "/admin/clients/{client_id}/keys/{key_id}": {
        "delete": {"operationId": "revokeClientKey", "tags": ["Admin"],
                   "summary": "Revoke an API key", "security": _SEC,
                   "responses": {"200": ok("revoked key", KEY), **_ERR, **_NOT_FOUND}},
    },
}
