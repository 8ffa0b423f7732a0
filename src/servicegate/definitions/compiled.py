"""A definition ready to serve: action, schema, limiter and verifier compiled once per load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from servicegate.actions import registry
from servicegate.actions.base import Action, BuildContext
from servicegate.config import Settings
from servicegate.definitions.models import Definition, HmacSignature, SignatureSpec
from servicegate.ratelimit import TokenBuckets
from servicegate.signatures import HmacSha256Verifier, StandardWebhooksVerifier, Verifier


@dataclass(slots=True)
class CompiledDefinition:
    spec: Definition
    name: str
    expose: frozenset[str]
    methods: frozenset[str]
    allow: str
    scopes: tuple[str, ...]
    #: what `/services/<name>` requires: `services:<name>` and the definition's own scopes
    service_scopes: tuple[str, ...]
    action: Action
    validator: Draft202012Validator | None
    max_bytes: int | None
    limiter: TokenBuckets | None
    verifier: Verifier | None
    captured_headers: frozenset[str]
    env_names: tuple[str, ...]
    timeout: float
    #: `async`: always, allowed or forbidden
    async_mode: str = "allowed"
    source: Path | None = None
    line: int | None = None

    @property
    def auth_mode(self) -> str:
        return self.spec.auth.mode

    def input_errors(self, body: Any) -> list[dict[str, str]]:
        if self.validator is None:
            return []
        errors = []
        for error in sorted(self.validator.iter_errors(body), key=lambda e: list(e.path)):
            pointer = "".join(
                "/" + str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path
            )
            errors.append({"pointer": pointer, "message": error.message})
        return errors


def compile_definition(spec: Definition, settings: Settings, source: Path | None = None,
                       line: int | None = None) -> CompiledDefinition:
    """Raise ValueError whose message starts with the dotted location of the problem."""
    validator = None
    if spec.input.schema_ is not None:
        try:
            Draft202012Validator.check_schema(spec.input.schema_)
        except SchemaError as exc:
            at = "/".join(str(p) for p in exc.path)
            raise ValueError(f"input.schema: not a valid JSON Schema"
                             f"{f' (at {at})' if at else ''}: {exc.message}") from None
        validator = Draft202012Validator(spec.input.schema_,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
    ctx = BuildContext(settings=settings, definition=spec.name,
                       directory=source.parent if source else None)
    action = registry.build(spec.action, ctx, "action")
    methods = frozenset(spec.methods)
    limiter = (TokenBuckets(spec.rate_limit.requests, spec.rate_limit.per)
               if spec.rate_limit else None)
    captured = {*settings.definitions.context_headers, *spec.context.headers,
                *action.captured_headers()}
    return CompiledDefinition(
        spec=spec,
        name=spec.name,
        expose=frozenset(spec.expose),
        methods=methods,
        allow=", ".join(m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if m in methods),
        scopes=tuple(spec.auth.scopes),
        service_scopes=(f"services:{spec.name}", *spec.auth.scopes),
        action=action,
        validator=validator,
        max_bytes=spec.input.max_bytes,
        limiter=limiter,
        verifier=build_verifier(spec.auth.signature) if spec.auth.signature else None,
        captured_headers=frozenset(captured),
        env_names=tuple(spec.context.env),
        timeout=spec.timeout,
        async_mode=spec.async_,
        source=source,
        line=line,
    )


def build_verifier(spec: SignatureSpec) -> Verifier:
    if isinstance(spec, HmacSignature):
        return HmacSha256Verifier(spec.header, spec.encoding, spec.prefix, spec.secret_env)
    return StandardWebhooksVerifier(spec.secret_env, spec.tolerance)
