"""Webhook secrets sealed at rest, a previous secret that signs during a rotation's grace
period, and the per-webhook choice to keep the secret out of delivery bodies.

The clear `secret` column goes: every secret stored in it is sealed here under the key ring the
migration is given (`servicegate migrate` and `servicegate serve` pass the configured one), so
no clear secret is left behind and nothing at run time reads two formats. A database holding
clear secrets refuses to migrate without a key ring. On SQLite the rows are rewritten with
`secure_delete` on, so the clear values do not linger in freed space of the file (the
write-ahead log is truncated after the migration commits).

Revision ID: 0007_webhook_secrets
Revises: 0006_partial_job_indexes
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0007_webhook_secrets"
down_revision = "0006_partial_job_indexes"
branch_labels = None
depends_on = None


def _context(webhook_id: str) -> str:
    # as `storage.schema.secret_context` defines it (kept here as it was when this ran)
    return f"webhooks/{webhook_id}/secret"


def upgrade() -> None:
    bind = op.get_bind()
    # Checked before any change: SQLite's driver commits each ALTER TABLE on its own, so a
    # refusal after one would leave the schema half-migrated.
    rows = bind.execute(sa.text("SELECT id, secret FROM webhooks WHERE secret IS NOT NULL")).all()
    box = context.config.attributes.get("secretbox")
    if rows and box is None:
        raise RuntimeError(
            f"{len(rows)} webhook secrets are stored in clear and are sealed by this migration, "
            "which needs the secrets key: run `servicegate migrate`")
    op.add_column("webhooks", sa.Column("secret_sealed", sa.Text(), nullable=True))
    op.add_column("webhooks", sa.Column("previous_secret_sealed", sa.Text(), nullable=True))
    op.add_column("webhooks", sa.Column("previous_secret_until", sa.DateTime(timezone=True),
                                        nullable=True))
    op.add_column("webhooks", sa.Column("secret_in_payload", sa.Boolean(), nullable=False,
                                        server_default=sa.true()))
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        bind.exec_driver_sql("PRAGMA secure_delete = ON")
    if rows:
        table = sa.table("webhooks", sa.column("id"), sa.column("secret"),
                         sa.column("secret_sealed"))
        for webhook_id, secret in rows:
            bind.execute(table.update().where(table.c.id == webhook_id).values(
                secret_sealed=box.seal(secret, _context(webhook_id)), secret=None))
    op.drop_column("webhooks", "secret")
    if sqlite:
        bind.exec_driver_sql("PRAGMA secure_delete = OFF")


def downgrade() -> None:
    # Sealed secrets are not opened again here: a downgraded gateway's webhooks have none.
    op.add_column("webhooks", sa.Column("secret", sa.String(256), nullable=True))
    op.drop_column("webhooks", "secret_in_payload")
    op.drop_column("webhooks", "previous_secret_until")
    op.drop_column("webhooks", "previous_secret_sealed")
    op.drop_column("webhooks", "secret_sealed")
