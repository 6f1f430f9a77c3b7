"""Stock levels per product and location, and the append-only ledger they always equal.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_levels",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("product_id", sa.Text, primary_key=True),
        sa.Column("location_id", sa.Text, primary_key=True),
        sa.Column("real", sa.Numeric(20, 6), nullable=False, server_default="0"),
        sa.Column("reserved", sa.Numeric(20, 6), nullable=False, server_default="0"),
        sa.Column("incoming", sa.Numeric(20, 6), nullable=False, server_default="0"),
    )
    op.create_table(
        "stock_ledger",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("location_id", sa.Text, nullable=False),
        sa.Column("delta_real", sa.Numeric(20, 6), nullable=False),
        sa.Column("delta_reserved", sa.Numeric(20, 6), nullable=False),
        sa.Column("delta_incoming", sa.Numeric(20, 6), nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index(
        "stock_ledger_by_product", "stock_ledger", ["tenant_id", "product_id", "location_id"]
    )
