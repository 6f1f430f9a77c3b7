"""Which streams a pending import-now asked for ("invoices", "purchase_orders" or every one).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("requested_streams", postgresql.ARRAY(sa.Text)))
