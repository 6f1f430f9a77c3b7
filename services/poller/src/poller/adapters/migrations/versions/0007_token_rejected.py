"""When Pennylane refused the tenant's token (401/403): the scheduler skips the tenant until it
is connected again with a token Pennylane accepts.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tenants", sa.Column("token_rejected_at", sa.DateTime(timezone=True), nullable=True)
    )
