"""Orders keep their document as JSON text.

PostgreSQL never looks inside an order's document, and parsing it into JSONB on every write
would cost PostgreSQL CPU for nothing (docs/performance.md has the measurement).

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
    op.alter_column(
        "orders",
        "doc",
        type_=sa.Text,
        existing_type=postgresql.JSONB,
        existing_nullable=False,
        postgresql_using="doc::text",
    )


def downgrade() -> None:
    op.alter_column(
        "orders",
        "doc",
        type_=postgresql.JSONB,
        existing_type=sa.Text,
        existing_nullable=False,
        postgresql_using="doc::jsonb",
    )
