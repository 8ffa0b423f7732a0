"""Identity search: identities and their addresses, with search indexes per backend.

Revision ID: 0003_identity
Revises: 0001_foundation

On PostgreSQL it adds `(column COLLATE "C")` indexes for `startswith` (a code-point range,
whatever the database collation) and tries `CREATE EXTENSION IF NOT EXISTS pg_trgm` (inside a
savepoint, so a server without the extension or the privilege still migrates); when available,
a trigram GIN index on full_name serves `contains`/`endswith`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_identity"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

_TRGM_COLUMNS = ("full_name",)
_PREFIX_COLUMNS = ("full_name", "full_name_lc", "last_name")


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("juridical_type", sa.SmallInteger(), nullable=False),
        sa.Column("first_name", sa.String(200)),
        sa.Column("middle_name", sa.String(200)),
        sa.Column("last_name", sa.String(200)),
        sa.Column("company_name", sa.String(400)),
        sa.Column("full_name", sa.String(400), nullable=False),
        sa.Column("salutation", sa.String(100)),
        sa.Column("name_suffix", sa.String(100)),
        sa.Column("idnumber", sa.String(64)),
        sa.Column("birth_date", sa.Date()),
        sa.Column("party_reference_code", sa.String(64)),
        sa.Column("first_name_lc", sa.String(200)),
        sa.Column("last_name_lc", sa.String(200)),
        sa.Column("company_name_lc", sa.String(400)),
        sa.Column("full_name_lc", sa.String(400), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identities"),
    )
    op.create_index("ix_identities_idnumber", "identities", ["idnumber"])
    op.create_index("ix_identities_full_name", "identities", ["full_name", "id"])
    op.create_index("ix_identities_full_name_lc", "identities", ["full_name_lc", "id"])
    op.create_index("ix_identities_last_name", "identities", ["last_name", "id"])
    op.create_index("ix_identities_party_reference_code", "identities", ["party_reference_code"])

    op.create_table(
        "identity_addresses",
        sa.Column("identity_id", sa.String(64), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("type", sa.String(40)),
        sa.Column("co_address", sa.String(200)),
        sa.Column("street", sa.String(200)),
        sa.Column("house_no", sa.String(20)),
        sa.Column("house_no_extension", sa.String(20)),
        sa.Column("zip_code", sa.String(20)),
        sa.Column("city", sa.String(100)),
        sa.Column("state_code", sa.String(20)),
        sa.Column("country_code", sa.String(3)),
        sa.Column("city_lc", sa.String(100)),
        sa.PrimaryKeyConstraint("identity_id", "position", name="pk_identity_addresses"),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"],
                                name="fk_identity_addresses_identity_id_identities",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_identity_addresses_city", "identity_addresses", ["city", "identity_id"])
    op.create_index("ix_identity_addresses_city_lc", "identity_addresses", ["city_lc"])
    op.create_index("ix_identity_addresses_zip_code", "identity_addresses", ["zip_code"])

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _postgres_search_indexes(bind)


def _postgres_search_indexes(bind: sa.Connection) -> None:
    # startswith() is a code-point range in the "C" collation (see identity/sqlbuild.py)
    for column in _PREFIX_COLUMNS:
        op.execute(f'CREATE INDEX ix_identities_{column}_c ON identities ({column} COLLATE "C")')
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return  # no pg_trgm here: contains() still works, by scanning
    for column in _TRGM_COLUMNS:
        op.execute(f"CREATE INDEX ix_identities_{column}_trgm ON identities "
                   f"USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    op.drop_table("identity_addresses")
    op.drop_table("identities")
