"""The sync interval Stockpit's settings give (inventory.settings.changed) and the cursor that
re-reads old purchase orders over the syncs.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("sync_interval_s", sa.Integer, nullable=True))
    op.create_table(
        "purchase_order_rechecks",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("below_id", sa.BigInteger, nullable=True),
        sa.Column("cycle_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done", sa.Integer, nullable=False, server_default="0"),
    )
