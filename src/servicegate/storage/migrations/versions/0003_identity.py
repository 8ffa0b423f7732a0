"""Identity search: identities and their addresses, with search indexes per backend.

Revision ID: 0003_identity
Revises: 0002_webhooks

Text columns compare by code point on both backends (SQLite's BINARY; COLLATE "C" on
PostgreSQL, whatever the database collation), so `startswith` is an exact range that plain
B-tree indexes serve. On PostgreSQL it also tries `CREATE EXTENSION IF NOT EXISTS pg_trgm`
(inside a savepoint, so a server without the extension or the privilege still migrates); when
available, a trigram GIN index on full_name serves `contains`/`endswith`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_identity"
down_revision = "0002_webhooks"
branch_labels = None
depends_on = None

_TRGM_COLUMNS = ("full_name",)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"

    def text(length: int) -> sa.String:
        # Code-point order on both backends: SQLite's BINARY default, PostgreSQL "C". Equality,
        # ranges (startswith), ORDER BY and LIKE prefixes then use plain B-tree indexes.
        return sa.String(length, collation="C" if postgres else None)

    op.create_table(
        "identities",
        sa.Column("id", text(64), nullable=False),
        sa.Column("juridical_type", sa.SmallInteger(), nullable=False),
        sa.Column("first_name", text(200)),
        sa.Column("middle_name", text(200)),
        sa.Column("last_name", text(200)),
        sa.Column("company_name", text(400)),
        sa.Column("full_name", text(400), nullable=False),
        sa.Column("salutation", text(100)),
        sa.Column("name_suffix", text(100)),
        sa.Column("idnumber", text(64)),
        sa.Column("birth_date", sa.Date()),
        sa.Column("party_reference_code", text(64)),
        sa.Column("first_name_lc", text(200)),
        sa.Column("last_name_lc", text(200)),
        sa.Column("company_name_lc", text(400)),
        sa.Column("full_name_lc", text(400), nullable=False),
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
        sa.Column("identity_id", text(64), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("type", text(40)),
        sa.Column("co_address", text(200)),
        sa.Column("street", text(200)),
        sa.Column("house_no", text(20)),
        sa.Column("house_no_extension", text(20)),
        sa.Column("zip_code", text(20)),
        sa.Column("city", text(100)),
        sa.Column("state_code", text(20)),
        sa.Column("country_code", text(3)),
        sa.Column("city_lc", text(100)),
        sa.PrimaryKeyConstraint("identity_id", "position", name="pk_identity_addresses"),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"],
                                name="fk_identity_addresses_identity_id_identities",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_identity_addresses_city", "identity_addresses", ["city", "identity_id"])
    op.create_index("ix_identity_addresses_city_lc", "identity_addresses", ["city_lc"])
    op.create_index("ix_identity_addresses_zip_code", "identity_addresses", ["zip_code"])

    if postgres:
        _postgres_trigram_index(bind)


def _postgres_trigram_index(bind: sa.Connection) -> None:
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
