"""Tables of the inventory schema (the migrations create them; queries use these)."""

import sqlalchemy as sa

metadata = sa.MetaData()

stock_levels = sa.Table(
    "stock_levels",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("product_id", sa.Text, primary_key=True),
    sa.Column("location_id", sa.Text, primary_key=True),
    sa.Column("real", sa.Numeric(20, 6), nullable=False),
    sa.Column("reserved", sa.Numeric(20, 6), nullable=False),
    sa.Column("incoming", sa.Numeric(20, 6), nullable=False),
)

stock_ledger = sa.Table(
    "stock_ledger",
    metadata,
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
