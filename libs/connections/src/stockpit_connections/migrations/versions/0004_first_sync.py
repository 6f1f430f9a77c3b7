"""While a tenant's first sync runs the poller takes a larger share of the token's rate limit
and outbound the rest: the registry records when that first sync started (NULL: not running)
and when it last ended (outbound keeps to the smaller share a little longer, while the
poller's sends of the larger one leave Pennylane's window).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "connections", sa.Column("first_sync_started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "connections", sa.Column("first_sync_ended_at", sa.DateTime(timezone=True), nullable=True)
    )
