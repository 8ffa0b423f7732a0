"""/webhooks: register, list and unregister the caller's webhooks; the event catalog."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.guard import authorize
from servicegate.api.openapi import (
    NULLABLE_STR,
    STR,
    TIME,
    array,
    model_schema,
    obj,
    ok,
    request_body,
)
from servicegate.api.state import runtime_of
from servicegate.auth.scopes import WEBHOOKS
from servicegate.problems import Problem
from servicegate.web.bodies import parse
from servicegate.web.responses import JSONResponse
from servicegate.webhooks import secrets
from servicegate.webhooks.store import UNSET, NoSuchWebhook
from servicegate.webhooks.targets import validate_url

METHODS = ("POST", "PUT", "PATCH")


class RegisterWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[str] = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2048)
    # the length is checked by `_secret` (it reports no value); the schema states it too
    secret: str | None = Field(None, repr=False, json_schema_extra={"minLength": 1,
                                                                    "maxLength": 256},
                               description="a plain secret (HMAC key: its UTF-8 bytes) or "
                               "whsec_<base64> (HMAC key: the decoded bytes, at least 24)")
    method: str | None = Field(None, max_length=16, description="POST (default), PUT or PATCH")
    generate_secret: bool = Field(False, alias="generateSecret",
                                  description="generate a whsec_ secret, answered once as `secret`")
    secret_in_payload: bool | None = Field(None, alias="secretInPayload",
                                           description="whether deliveries carry the secret")

    @field_validator("secret", mode="before")
    @classmethod
    def _secret(cls, value: Any) -> Any:
        # Checked here, before pydantic's own checks, whose messages quote the value given.
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if not 1 <= len(value) <= 256:
            raise ValueError("must have 1 to 256 characters")
        return secrets.check(value)

    @model_validator(mode="after")
    def _one_secret(self) -> RegisterWebhook:
        if self.generate_secret and "secret" in self.model_fields_set:
            raise ValueError("send either secret or generateSecret, not both")
        return self


class UnregisterWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] | None = Field(None, max_length=200)


def invalid(errors: list[dict[str, str]]) -> Problem:
    return Problem(
        400,
        f"the request body is invalid ({len(errors)} error{'s' if len(errors) > 1 else ''})",
        title="Validation failed", errors=errors)


def checked_url(request: Request, url: str, pointer: str = "/url") -> str:
    allow = runtime_of(request).settings.webhooks.allow_private_networks
    try:
        return validate_url(url, allow_private=allow)
    except ValueError as exc:
        raise invalid([{"pointer": pointer, "message": str(exc)}]) from None


def checked_events(request: Request, names: list[str], *, known_only: bool = True) -> list[str]:
    catalog = runtime_of(request).webhooks.catalog
    out, errors = [], []
    for i, name in enumerate(names):
        try:
            out.append(catalog.normalise(name) if known_only else name.strip().lower())
        except ValueError as exc:
            errors.append({"pointer": f"/events/{i}", "message": str(exc)})
    if errors:
        raise invalid(errors)
    return list(dict.fromkeys(out))


async def list_webhooks(request: Request) -> Response:
    principal = await authorize(request, WEBHOOKS)
    records = await runtime_of(request).webhooks.store.list_for(principal.client_id)
    return JSONResponse({"count": len(records), "webHooks": [r.to_json() for r in records]})


async def register(request: Request) -> Response:
    principal = await authorize(request, WEBHOOKS)
    body = await parse(request, RegisterWebhook)
    url = checked_url(request, body.url)
    names = checked_events(request, body.events)
    method = None
    if body.method is not None:
        method = body.method.strip().upper()
        if method not in METHODS:
            raise invalid([{"pointer": "/method",
                            "message": f"unsupported method; use one of {', '.join(METHODS)}"}])
    secret: Any = body.secret if "secret" in body.model_fields_set else UNSET
    if body.generate_secret:
        secret = secrets.generate()
    record = await runtime_of(request).webhooks.store.register(
        principal.client_id, url, names, method=method, secret=secret,
        secret_in_payload=body.secret_in_payload)
    out = {"events": list(record.events), "url": record.url, "method": record.method}
    if body.generate_secret:
        out["secret"] = secret  # shown once: it is stored sealed and never answered again
    return JSONResponse(out)


async def unregister(request: Request) -> Response:
    principal = await authorize(request, WEBHOOKS)
    body = await parse(request, UnregisterWebhook)
    names = None if body.events is None else checked_events(request, body.events, known_only=False)
    try:
        record = await runtime_of(request).webhooks.store.unregister(
            principal.client_id, body.url, names)
    except NoSuchWebhook:
        raise Problem(404, "you have no webhook registered for this URL") from None
    return JSONResponse({"events": list(record.events), "url": record.url,
                         "method": record.method})


async def event_catalog(request: Request) -> Response:
    await authorize(request, WEBHOOKS)
    described = runtime_of(request).webhooks.catalog.describe()
    return JSONResponse({"count": len(described), "events": described})


def routes() -> list[Route]:
    return [
        Route("/webhooks", list_webhooks, methods=["GET"]),
        Route("/webhooks", register, methods=["POST"]),
        Route("/webhooks", unregister, methods=["DELETE"]),
        Route("/webhooks/events", event_catalog, methods=["GET"]),
    ]


_SEC = [{"oauth2apikey": ["webhooks"]}]
_ERR = {"400": {"$ref": "#/components/responses/Problem"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"}}
WEBHOOK = obj(events=array(STR), url=STR, method=NULLABLE_STR, status=STR,
              secretInPayload={"type": ["boolean", "null"]}, disabledReason=NULLABLE_STR,
              previousSecretExpiresAt=TIME)
_REGISTERED = obj(events=array(STR), url=STR, method=NULLABLE_STR,
                  secret={**STR, "description": "the generated secret, answered this once"})
OPENAPI = {
    "/webhooks": {
        "get": {"operationId": "listWebhooks",
                "tags": ["Webhooks"], "summary": "Get all my webhooks", "security": _SEC,
                "responses": {"200": ok("count and webHooks (never secrets)",
                                        obj(count={"type": "integer"}, webHooks=array(WEBHOOK))),
                              **_ERR}},
        "post": {"operationId": "registerWebhook",
                 "tags": ["Webhooks"], "summary": "Register a webhook to listen to events",
                 "security": _SEC, "requestBody": request_body(model_schema(RegisterWebhook)),
                 "responses": {"200": ok("events, url, method (and the generated secret, this "
                                         "once)", _REGISTERED), **_ERR}},
        "delete": {"operationId": "unregisterWebhook",
                   "tags": ["Webhooks"], "summary": "Unregister some or all events of a URL",
                   "security": _SEC, "requestBody": request_body(model_schema(UnregisterWebhook)),
                   "responses": {"200": ok("what remains for that URL", _REGISTERED),
                                 "404": {"$ref": "#/components/responses/Problem"}, **_ERR}},
    },
    "/webhooks/events": {
        "get": {"operationId": "listEvents",
                "tags": ["Webhooks"], "summary": "The event catalog", "security": _SEC,
                "responses": {"200": ok("count and events", obj(
                    count={"type": "integer"}, events=array(obj(name=STR, origin=STR)))), **_ERR}},
    },
}
