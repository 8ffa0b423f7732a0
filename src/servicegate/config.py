"""Configuration: `servicegate.toml` plus `SERVICEGATE_<SECTION>__<KEY>` environment overrides."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from servicegate.durations import Duration
from servicegate.identity_shape import ADDRESS_MEMBERS, SCALAR_PATHS
from servicegate.validation import describe

CONFIG_ENV = "SERVICEGATE_CONFIG"
DEFAULT_CONFIG_FILE = "servicegate.toml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    base_path: str = ""
    workers: int = Field(1, ge=1, le=64)
    shutdown_grace: Duration = 10.0

    @field_validator("base_path")
    @classmethod
    def _normalise_base(cls, value: str) -> str:
        value = value.strip()
        if value in ("", "/"):
            return ""
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+/?", value):
            raise ValueError("must look like /gateway (URL-safe segments, leading slash)")
        return value.rstrip("/")


class DatabaseConfig(Section):
    url: str = "sqlite:///var/servicegate.db"
    pool_size: int = Field(10, ge=1, le=200)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "sqlite+", "postgresql:", "postgresql+", "postgres:")):
            raise ValueError("must be a sqlite:///path or postgresql://... URL")
        return value


class DefinitionsConfig(Section):
    dir: Path = Path("definitions")
    watch: bool = True
    # Request headers templates may read, besides each definition's own `context.headers`.
    context_headers: list[str] = [
        "accept", "accept-language", "content-type", "user-agent", "x-request-id",
        "x-correlation-id", "idempotency-key",
    ]
    max_upstream_response_bytes: int = Field(16 * 1_048_576, ge=1024)
    # `http` actions whose URL origin is rendered by a template may reach private networks
    # (as `[webhooks] allow_private_networks` does for webhooks); literal origins always may.
    allow_private_networks: bool = False

    @field_validator("context_headers")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [h.strip().lower() for h in value]


class NamedDatabase(Section):
    """A database a `sql` action may use, by name: `[databases.<name>] url = "..."`."""

    url: str
    pool_size: int = Field(5, ge=1, le=200)
    statement_timeout: Duration = 5.0


class ExternalIssuer(Section):
    issuer: str
    jwks_url: str
    audience: str
    algorithms: list[str] = ["RS256", "ES256"]

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
        bad = [a for a in value if a not in allowed]
        if bad:
            raise ValueError(f"unsupported algorithms {bad}; allowed: {sorted(allowed)}")
        return value


class AuthConfig(Section):
    token_ttl: Duration = 3600.0
    signing_key_path: Path = Path("var/keys")
    issuer: str = "servicegate"
    audience: str = "servicegate"
    cache_ttl: Duration = 5.0
    issuers: list[ExternalIssuer] = []
    jwks_cache_ttl: Duration = 600.0
    # failed client authentications at the token endpoint allowed per window, per client id
    # and per source address, before attempts are refused (429) without verifying anything
    login_failures: int = Field(10, ge=1)
    login_failures_per_address: int = Field(50, ge=1)
    login_failure_window: Duration = Field(60.0, gt=0)
    # threads that verify client secrets (argon2), and verifications that may wait for one
    secret_workers: int = Field(2, ge=1, le=32)
    secret_queue: int = Field(32, ge=0)


class SecretsConfig(Section):
    """Encryption of stored secrets (webhook secrets). The key ring is the environment
    variable SERVICEGATE_SECRETS_KEY when set, else this file (created 0600 on first start)."""

    key_file: Path = Path("var/secrets.key")


class LimitsConfig(Section):
    max_body_bytes: int = Field(1_048_576, ge=1024, le=1_073_741_824)
    # At most 200: orjson serialises 254 levels, and a body is stored inside a job or event.
    max_json_depth: int = Field(64, ge=1, le=200)
    body_read_timeout: Duration = Field(10.0, gt=0)


class WebhooksConfig(Section):
    allow_private_networks: bool = False
    include_secret_in_payload: bool = True
    # how long the replaced secret still signs deliveries after a webhook's secret changes
    secret_grace: Duration = 86400.0
    retry_schedule: list[Duration] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    workers: int = Field(1, ge=0, le=64)
    concurrency: int = Field(64, ge=1, le=1024)
    custom_events: list[str] = []
    timeout: Duration = 15.0
    lease: Duration = 60.0
    poll_interval: Duration = 0.5
    claim_batch: int = Field(200, ge=1, le=1000)
    jitter: float = Field(0.1, ge=0.0, le=1.0)
    disable_after_failures: int = Field(10, ge=0, le=10_000)
    max_batch: int = Field(1000, ge=1, le=10_000)
    max_event_bytes: int = Field(262_144, ge=256, le=16_777_216)
    response_body_bytes: int = Field(2048, ge=0, le=65_536)
    retention_days: float = Field(7.0, gt=0)
    failed_retention_days: float = Field(30.0, gt=0)
    prune_interval: Duration = 3600.0
    user_agent: str = "ServiceGate-Webhooks/1.0"

    @field_validator("retry_schedule")
    @classmethod
    def _non_empty(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("needs at least one attempt")
        if len(value) > 50:
            raise ValueError("at most 50 attempts")
        return value

    @field_validator("custom_events")
    @classmethod
    def _event_names(cls, value: list[str]) -> list[str]:
        names = []
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9._-]{0,99}", name.strip().lower()):
                raise ValueError(f"malformed event name {name!r} (letters, digits, . _ -)")
            names.append(name.strip().lower())
        return list(dict.fromkeys(names))

    @model_validator(mode="after")
    def _lease_outlives_timeout(self) -> WebhooksConfig:
        if self.lease <= self.timeout:
            raise ValueError("lease must be longer than timeout (a live delivery keeps its lease)")
        return self


class JobsConfig(Section):
    """Asynchronous invocations (`?async=true`): durable jobs on the lease queue."""

    workers: int = Field(1, ge=0, le=64)
    concurrency: int = Field(16, ge=1, le=1024)
    lease: Duration = 30.0
    poll_interval: Duration = 0.5
    max_attempts: int = Field(3, ge=1, le=100)
    retry_backoff: Duration = 2.0
    retry_backoff_max: Duration = 300.0
    jitter: float = Field(0.1, ge=0.0, le=1.0)
    result_max_bytes: int = Field(262_144, ge=256, le=67_108_864)
    retention: Duration = 7 * 86400.0
    prune_interval: Duration = 3600.0
    idempotency_ttl: Duration = 86400.0
    shutdown_grace: Duration = 8.0
    poll_after: Duration = 1.0
    # submission groups written at once on PostgreSQL (SQLite: one, the file has one writer)
    intake_writers: int = Field(1, ge=1, le=16)

    @model_validator(mode="after")
    def _lease_is_renewable(self) -> JobsConfig:
        if self.lease < 1.0:
            raise ValueError("lease must be at least 1s (running jobs renew it every lease/3)")
        return self


class MetricsConfig(Section):
    enabled: bool = True
    require_admin: bool = False


_SQL_NAME = r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$"


def _check_columns(value: dict[str, str], known: frozenset[str], what: str) -> dict[str, str]:
    lowered = {k.lower(): k for k in known}
    out: dict[str, str] = {}
    for prop, column in value.items():
        if prop.lower() not in lowered:
            raise ValueError(f"unknown {what} {prop!r}; known: {sorted(known)}")
        if not re.fullmatch(_SQL_NAME, column) or "." in column:
            raise ValueError(f"column for {prop!r} must be a plain column name, not {column!r}")
        out[lowered[prop.lower()]] = column
    return out


class ExternalAddresses(Section):
    table: str = Field(pattern=_SQL_NAME)
    key: str = Field(pattern=_SQL_NAME)  # column referring to the identity key
    order_by: str | None = Field(None, pattern=_SQL_NAME)
    columns: dict[str, str]

    @field_validator("columns")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_columns(value, ADDRESS_MEMBERS, "address member")


class ExternalIdentitySource(Section):
    """`[identity.sql]`: search an existing table or view of another database, read-only."""

    url: str
    table: str = Field(pattern=_SQL_NAME)
    key: str = Field("id", pattern=_SQL_NAME)
    columns: dict[str, str] = {}
    addresses: ExternalAddresses | None = None
    pool_size: int = Field(5, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        return DatabaseConfig._known_scheme(value)

    @field_validator("columns")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_columns(value, SCALAR_PATHS - {"id"}, "identity property")


class IdentityConfig(Section):
    source: Literal["internal", "sql"] = "internal"
    max_filter_length: int = Field(2048, ge=64, le=65536)
    max_depth: int = Field(24, ge=2, le=100)
    max_terms: int = Field(64, ge=1, le=1000)
    sql: ExternalIdentitySource | None = None

    @model_validator(mode="after")
    def _sql_given(self) -> IdentityConfig:
        if self.source == "sql" and self.sql is None:
            raise ValueError('source = "sql" needs an [identity.sql] section (url, table, columns)')
        return self


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"
    access_log: bool = False


class Settings(BaseSettings):
    """Everything the gateway reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="SERVICEGATE_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    definitions: DefinitionsConfig = DefinitionsConfig()
    databases: dict[str, NamedDatabase] = {}
    auth: AuthConfig = AuthConfig()
    secrets: SecretsConfig = SecretsConfig()
    limits: LimitsConfig = LimitsConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    jobs: JobsConfig = JobsConfig()
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()
    identity: IdentityConfig = IdentityConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = config_file_in_use()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


class ConfigError(Exception):
    """Raised with a message that names the offending key, and where it was set."""


def config_file_in_use() -> Path | None:
    """The configuration file this process reads: `SERVICEGATE_CONFIG`, else
    `./servicegate.toml` when there is one, else none (defaults and environment only)."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_settings(**overrides: Any) -> Settings:
    """Load and validate; raise ConfigError naming the key, where it was set (the environment
    variable, or the file and line) and, for a typo, the nearest known key."""
    path = config_file_in_use()
    if path is not None and not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_where(err["loc"], path) + ": " + describe(err, Settings)
                 for err in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    except Exception as exc:  # TOML syntax errors and the like
        raise ConfigError(f"invalid configuration file {path}: {exc}") from None


def _where(loc: tuple[Any, ...], path: Path | None) -> str:
    """`section.key`, then where it was set: the environment variable that overrides it, or
    the file and line."""
    key = ".".join(str(p) for p in loc)
    env = "SERVICEGATE_" + "__".join(str(p).upper() for p in loc[:2])
    if any(name.upper() == env for name in os.environ):
        return f"{key} (env {env})"
    line = _line_in_toml(path, loc) if path is not None else None
    if line is not None:
        return f"{path}:{line}: {key}"
    return f"{key} (file {path})" if path is not None else key


_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*["']?([A-Za-z0-9_.-]+)["']?\s*=""")


def _line_in_toml(path: Path, loc: tuple[Any, ...]) -> int | None:
    """The line that sets `loc` (`section.key`) in a TOML file, found by reading it as text:
    the TOML parser keeps no positions. Falls back to the section's header line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    parts = [str(p) for p in loc if not isinstance(p, int)]
    section, key = ".".join(parts[:-1]), parts[-1] if parts else ""
    current, header = "", None
    for number, line in enumerate(text.splitlines(), 1):
        table = _TABLE.match(line)
        if table:
            current = table.group(1).strip()
            if current == section and header is None:
                header = number
            continue
        found = _KEY.match(line)
        if found and found.group(1) == key and current == section:
            return number
    return header
