"""Tables (SQLAlchemy Core). Alembic migrations in `migrations/` create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)

from servicegate.storage.queue_columns import queue_columns, queue_index, queue_table_options

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

clients = Table(
    "clients",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "client_id",
        String(64),
        ForeignKey("clients.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("digest", String(64), nullable=False, unique=True),
    Column("hint", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_api_keys_client", "client_id"),
)

# -- webhooks and events -------------------------------------------------------------------------

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    # Not a foreign key: principals from external issuers own webhooks too.
    Column("client_id", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("method", String(8), nullable=False),
    # Secrets sealed by `servicegate.secretbox` (migration 0007), bound to `secret_context`.
    # The previous secret still signs, beside the current one, until `previous_secret_until`.
    Column("secret_sealed", Text, nullable=True),
    Column("previous_secret_sealed", Text, nullable=True),
    Column("previous_secret_until", DateTime(timezone=True), nullable=True),
    Column("secret_in_payload", Boolean, nullable=False, default=True, server_default=true()),
    Column("status", String(16), nullable=False),
    Column("disabled_reason", String(500), nullable=True),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("client_id", "url", name="uq_webhooks_client_url"),
)


def secret_context(webhook_id: str) -> str:
    """What a webhook's sealed secrets are bound to: a ciphertext copied onto another webhook
    does not open there. The current and the previous secret share it, so a rotation moves the
    current ciphertext to `previous_secret_sealed` as it is."""
    return f"webhooks/{webhook_id}/secret"

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("webhook_id", String(40), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(100), nullable=False),
    PrimaryKeyConstraint("webhook_id", "event", name="pk_webhook_events"),
    Index("ix_webhook_events_event", "event"),
)

events = Table(
    "events",
    metadata,
    Column("id", String(140), primary_key=True),
    Column("event", String(100), nullable=False),
    Column("source", String(64), nullable=False),
    Column("owner", String(64), nullable=True),
    Column("data", JSON, nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_events_created", "created_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("event_id", String(140), ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(100), nullable=False),
    Column("webhook_id", String(40), ForeignKey("webhooks.id", ondelete="SET NULL"), nullable=True),
    Column("client_id", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    *queue_columns(),
    Column("attempt_budget", Integer, nullable=False),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    queue_index("deliveries"),
    Index("ix_deliveries_client", "client_id", "id"),
    Index("ix_deliveries_webhook", "webhook_id", "status"),
    Index("ix_deliveries_event", "event_id"),
    **queue_table_options(),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), ForeignKey("deliveries.id", ondelete="CASCADE"),
           nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("duration_ms", Float, nullable=False),
    Column("response_body", Text, nullable=True),
    Column("error", String(500), nullable=True),
    Index("ix_delivery_attempts_delivery", "delivery_id"),
)

# Identity search. `doc` is the identity as answered (JSON text); the other columns
# are what filters and ordering run on. `*_lc` columns hold Python's str.lower() of their
# source so `tolower(...)` is Unicode-correct on SQLite too and can use a plain index.
identities = Table(
    "identities",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("juridical_type", SmallInteger, nullable=False),
    Column("first_name", String(200)),
    Column("middle_name", String(200)),
    Column("last_name", String(200)),
    Column("company_name", String(400)),
    Column("full_name", String(400), nullable=False),
    Column("salutation", String(100)),
    Column("name_suffix", String(100)),
    Column("idnumber", String(64)),
    Column("birth_date", Date),
    Column("party_reference_code", String(64)),
    Column("first_name_lc", String(200)),
    Column("last_name_lc", String(200)),
    Column("company_name_lc", String(400)),
    Column("full_name_lc", String(400), nullable=False),
    Column("doc", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_identities_idnumber", "idnumber"),
    Index("ix_identities_full_name", "full_name", "id"),
    Index("ix_identities_full_name_lc", "full_name_lc", "id"),
    Index("ix_identities_last_name", "last_name", "id"),
    Index("ix_identities_party_reference_code", "party_reference_code"),
)

identity_addresses = Table(
    "identity_addresses",
    metadata,
    Column("identity_id", String(64), ForeignKey("identities.id", ondelete="CASCADE"),
           nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("type", String(40)),
    Column("co_address", String(200)),
    Column("street", String(200)),
    Column("house_no", String(20)),
    Column("house_no_extension", String(20)),
    Column("zip_code", String(20)),
    Column("city", String(100)),
    Column("state_code", String(20)),
    Column("country_code", String(3)),
    Column("city_lc", String(100)),
    PrimaryKeyConstraint("identity_id", "position", name="pk_identity_addresses"),
    Index("ix_identity_addresses_city", "city", "identity_id"),
    Index("ix_identity_addresses_city_lc", "city_lc"),
    Index("ix_identity_addresses_zip_code", "zip_code"),
)

# -- asynchronous jobs --------------------------------------------------------------------------

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    # Not a foreign key: principals from external issuers own jobs too.
    Column("client_id", String(64), nullable=False),
    Column("service", String(64), nullable=False),
    Column("context", JSON, nullable=False),
    *queue_columns(),
    Column("max_attempts", Integer, nullable=False),
    Column("idempotency_key", String(255), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    queue_index("jobs"),
    Index("ix_jobs_client", "client_id", "id"),
    # partial (migration 0006): a job is stored unfinished and, mostly, without a key
    Index("ix_jobs_finished", "finished_at", sqlite_where=text("finished_at IS NOT NULL"),
          postgresql_where=text("finished_at IS NOT NULL")),
    Index("uq_jobs_idempotency", "client_id", "idempotency_key", unique=True,
          sqlite_where=text("idempotency_key IS NOT NULL"),
          postgresql_where=text("idempotency_key IS NOT NULL")),
    **queue_table_options(),
)
