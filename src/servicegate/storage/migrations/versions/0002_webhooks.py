"""Webhooks, events, deliveries (a lease queue) and delivery attempts.

Revision ID: 0002_webhooks
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_webhooks"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("secret", sa.String(256), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disabled_reason", sa.String(500), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name="fk_webhooks_client_id_clients", ondelete="CASCADE"),
        sa.UniqueConstraint("client_id", "url", name="uq_webhooks_client_url"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("webhook_id", sa.String(40), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", "event", name="pk_webhook_events"),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"],
                                name="fk_webhook_events_webhook_id_webhooks", ondelete="CASCADE"),
    )
    op.create_index("ix_webhook_events_event", "webhook_events", ["event"])
    op.create_table(
        "events",
        sa.Column("id", sa.String(140), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_created", "events", ["created_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(140), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("webhook_id", sa.String(40), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_at", TS, nullable=False),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempt_budget", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"],
                                name="fk_deliveries_event_id_events", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"],
                                name="fk_deliveries_webhook_id_webhooks", ondelete="SET NULL"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "run_at", "id"])
    op.create_index("ix_deliveries_client", "deliveries", ["client_id", "id"])
    op.create_index("ix_deliveries_webhook", "deliveries", ["webhook_id", "status"])
    op.create_index("ix_deliveries_event", "deliveries", ["event_id"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"],
                                name="fk_delivery_attempts_delivery_id_deliveries",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_delivery_attempts_delivery", "delivery_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("delivery_attempts")
    op.drop_table("deliveries")
    op.drop_table("events")
    op.drop_table("webhook_events")
    op.drop_table("webhooks")
