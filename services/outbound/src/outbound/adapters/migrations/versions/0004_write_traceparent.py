"""The trace a queued write continues (W3C traceparent of the request that caused it).

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
    op.add_column("writes", sa.Column("traceparent", sa.Text))
