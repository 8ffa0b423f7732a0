"""Queue leases in a column of their own (`lease_until`), so a claim touches no indexed column.

A claim used to move `run_at` (indexed) to the end of its lease; it now sets `lease_until`
instead and leaves `run_at` as the due time. Items leased at upgrade time get `lease_until` =
their `run_at` (the end of their lease), so they stay leased until then. The due indexes cover
pending items only, and on PostgreSQL the queue tables leave half of each page free (fillfactor
50) so a claim is a HOT update (no new index entries).

Revision ID: 0005_lease_until
Revises: 0004_jobs
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_lease_until"
down_revision = "0004_jobs"
branch_labels = None
depends_on = None

TABLES = ("deliveries", "jobs")
PENDING_ONLY = "status = 'pending'"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        op.execute(f"UPDATE {table} SET lease_until = run_at "
                   f"WHERE {PENDING_ONLY} AND lease_token IS NOT NULL")
        op.drop_index(f"ix_{table}_due", table_name=table)
        op.create_index(f"ix_{table}_due", table, ["run_at", "id"],
                        sqlite_where=sa.text(PENDING_ONLY), postgresql_where=sa.text(PENDING_ONLY))
        if postgres:  # pages written from now on; existing pages are rewritten by VACUUM FULL
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        if postgres:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
        # leased items: back to the lease's end in run_at, as the previous version expects
        op.execute(f"UPDATE {table} SET run_at = lease_until WHERE {PENDING_ONLY} "
                   f"AND lease_token IS NOT NULL AND lease_until IS NOT NULL")
        op.drop_index(f"ix_{table}_due", table_name=table)
        op.create_index(f"ix_{table}_due", table, ["status", "run_at", "id"])
        with op.batch_alter_table(table) as batch:
            batch.drop_column("lease_until")
