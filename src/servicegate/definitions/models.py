"""The shape of a definition file (the keys fixed by the contract), as pydantic models.

The JSON Schema published under `schemas/` is generated from `Definition`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

import servicegate.actions  # noqa: F401 - registers every action type
from servicegate.actions import registry
from servicegate.actions.pipeline import PipelineSpec
from servicegate.durations import Duration

RESERVED_NAMES = frozenset({"ping", "identity", "jobs"})
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
ActionUnion = registry.spec_union()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HmacSignature(Strict):
    """HMAC-SHA256 over the raw body, sent in a named header."""

    scheme: Literal["hmac-sha256"]
    header: str = Field("X-Signature", description="Header carrying the signature")
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field("", description="Text before the signature, e.g. `sha256=`")
    secret_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                            description="Environment variable holding the shared secret")


class StandardWebhooksSignature(Strict):
    """Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>`."""

    scheme: Literal["standard-webhooks"]
    secret_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                            description="Environment variable holding the `whsec_...` secret")
    tolerance: Duration = Field(300.0, description="Accepted clock difference of the timestamp")


SignatureSpec = HmacSignature | StandardWebhooksSignature


class AuthSpec(Strict):
    scopes: list[str] = Field(default_factory=list,
                              description="Needed in addition to services / callback")
    mode: Literal["required", "optional", "none"] = Field(
        "required", description="Callbacks only: whether credentials are needed")
    signature: HmacSignature | StandardWebhooksSignature | None = Field(
        None, discriminator="scheme", description="Callbacks only: inbound signature check")


class InputSpec(Strict):
    schema_: dict[str, Any] | None = Field(None, alias="schema",
                                           description="JSON Schema (2020-12) for the body")
    max_bytes: int | None = Field(None, ge=1, description="Body size limit for this definition")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RateLimitSpec(Strict):
    requests: int = Field(ge=1, le=1_000_000)
    per: Duration = Field(description="Window, e.g. 1s, 1m, 1h")

    @field_validator("per")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be longer than 0")
        return value


class ContextSpec(Strict):
    headers: list[str] = Field(default_factory=list,
                               description="Extra request headers templates may read")
    env: list[str] = Field(default_factory=list,
                           description="Environment variables templates may read as env.NAME")

    @field_validator("headers")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]

    @field_validator("env")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        import re

        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return value


class Definition(Strict):
    """One service definition: a name, who may call it, and the action it runs."""

    name: str = Field(pattern=NAME_PATTERN, description="URL-safe, unique, not a reserved name")
    description: str = ""
    expose: list[Literal["services", "callback"]] = Field(
        default_factory=lambda: ["services"], min_length=1)
    methods: list[Method] = Field(default_factory=lambda: ["GET", "POST"], min_length=1)
    auth: AuthSpec = Field(default_factory=AuthSpec)
    async_: Literal["forbidden", "allowed", "always"] = Field("allowed", alias="async")
    input: InputSpec = Field(default_factory=InputSpec)
    timeout: Duration = Field(30.0, description="The whole invocation, all steps included")
    rate_limit: RateLimitSpec | None = None
    context: ContextSpec = Field(default_factory=ContextSpec)
    action: ActionUnion

    model_config = ConfigDict(extra="forbid", populate_by_name=True,
                              json_schema_extra={"title": "ServiceGate service definition"})

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NAMES:
            raise ValueError(f"{value!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
        return value

    @field_validator("expose", "methods")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be longer than 0")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Definition:
        if self.action.when is not None:
            raise ValueError("action.when is only allowed on pipeline steps")
        if "callback" not in self.expose and (self.auth.mode != "required" or self.auth.signature):
            raise ValueError("auth.mode and auth.signature apply to callbacks only; "
                             "add `callback` to expose")
        return self


PipelineSpec.model_rebuild(_types_namespace={"StepSpec": ActionUnion})
Definition.model_rebuild()


def json_schema() -> dict[str, Any]:
    schema = Definition.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://servicegate.dev/schemas/definition.schema.json"
    return schema
