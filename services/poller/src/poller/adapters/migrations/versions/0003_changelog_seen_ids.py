"""Record ids handled at the changelog watermark instant (Pennylane's start_date is inclusive).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "streams",
        sa.Column(
            "changelog_seen_ids",
            postgresql.ARRAY(sa.BigInteger),
            nullable=False,
            server_default="{}",
        ),
    )
