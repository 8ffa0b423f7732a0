"""Jobs: index only the rows an index serves. `finished_at` is indexed for retention (finished
jobs), the idempotency key's uniqueness for keyed submissions; a job is stored unfinished and,
mostly, without a key, so each new job would add two index entries nobody reads (NULLs):
server CPU and write-ahead log on every submission.

SQLite keeps a UNIQUE constraint in the table's definition: the table is rebuilt (batch mode),
its other indexes recreated as they were.

Revision ID: 0006_partial_job_indexes
Revises: 0005_lease_until
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_partial_job_indexes"
down_revision = "0005_lease_until"
branch_labels = None
depends_on = None

FINISHED = "finished_at IS NOT NULL"
KEYED = "idempotency_key IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_jobs_finished", table_name="jobs")
    op.create_index("ix_jobs_finished", "jobs", ["finished_at"],
                    sqlite_where=sa.text(FINISHED), postgresql_where=sa.text(FINISHED))
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("uq_jobs_idempotency", type_="unique")
    op.create_index("uq_jobs_idempotency", "jobs", ["client_id", "idempotency_key"], unique=True,
                    sqlite_where=sa.text(KEYED), postgresql_where=sa.text(KEYED))


def downgrade() -> None:
    op.drop_index("uq_jobs_idempotency", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.create_unique_constraint("uq_jobs_idempotency", ["client_id", "idempotency_key"])
    op.drop_index("ix_jobs_finished", table_name="jobs")
    op.create_index("ix_jobs_finished", "jobs", ["finished_at"])
