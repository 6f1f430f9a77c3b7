"""Products merged into another (rule 15): found without reading every product's document.

Revision ID: 0007
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF NOT EXISTS: a schema put back to an older revision by hand (a test of 0004 does) keeps
    # the column, and upgrading again must not fail on it.
    op.execute(sa.text("ALTER TABLE products ADD COLUMN IF NOT EXISTS merged_into uuid"))
    op.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS products_merged ON products (tenant_id) "
            "WHERE merged_into IS NOT NULL"
        )
    )
